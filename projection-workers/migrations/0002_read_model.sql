-- The read model: resources, availability per (resource, slot) and reservations. Written only
-- by the projection workers, in the same transaction as `projection_offsets`. `version` is
-- the offset (in the resource's events partition) of the last event that changed the row.

CREATE TABLE resources (
    resource_id  TEXT    PRIMARY KEY,
    -- Events partition of the resource: refills of the Redis cache read per partition.
    partition    INTEGER NOT NULL CHECK (partition >= 0),
    name         TEXT    NOT NULL,
    -- Default capacity of every slot that has no row in `availability`.
    capacity     INTEGER NOT NULL CHECK (capacity >= 0),
    version      BIGINT  NOT NULL
);
CREATE INDEX resources_by_partition ON resources (partition);

-- Slots some event touched (a hold or a capacity change); other slots have the resource's
-- default capacity and no usage.
CREATE TABLE availability (
    resource_id  TEXT    NOT NULL,
    slot         DATE    NOT NULL,
    capacity     INTEGER NOT NULL CHECK (capacity >= 0),
    held         INTEGER NOT NULL CHECK (held >= 0),
    confirmed    INTEGER NOT NULL CHECK (confirmed >= 0),
    version      BIGINT  NOT NULL,
    PRIMARY KEY (resource_id, slot)
);

CREATE TABLE reservations (
    reservation_id  TEXT        PRIMARY KEY,
    resource_id     TEXT        NOT NULL,
    slot_from       DATE        NOT NULL,
    slot_to         DATE        NOT NULL CHECK (slot_to > slot_from),
    quantity        INTEGER     NOT NULL CHECK (quantity > 0),
    customer_id     TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    expires_at      TIMESTAMPTZ NOT NULL,
    payment_ref     TEXT,
    cancel_reason   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    version         BIGINT      NOT NULL
);
-- A customer's reservations, newest id last: ids start with a time-ordered UUID, so keyset
-- pagination on (customer_id, reservation_id) lists them in creation order.
CREATE INDEX reservations_by_customer ON reservations (customer_id, reservation_id);
CREATE INDEX reservations_by_resource ON reservations (resource_id, slot_from);
