-- Where each projection has come to in each partition of the events topic. Written in the
-- same transaction as the effects of the events before `next_offset`, so a crash can never
-- apply an event twice or skip one: on assignment a worker seeks to `next_offset`.
CREATE TABLE projection_offsets (
    topic        TEXT        NOT NULL,
    partition    INTEGER     NOT NULL CHECK (partition >= 0),
    next_offset  BIGINT      NOT NULL CHECK (next_offset >= 0),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
