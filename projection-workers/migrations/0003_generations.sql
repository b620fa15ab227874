-- Read-model generations: the rows of a read model live in one schema per generation
-- (`public` for generation 0, which the earlier migrations created; `rm_<n>` for the
-- generations `holdfast-replay rebuild` builds). The single row of `read_model_pointer` names
-- the live one. Writers lock it FOR SHARE in each transaction and write into its schema;
-- a rebuild switches it (FOR UPDATE) in one transaction together with the `read_model` views,
-- so a reader sees the old generation or the new one, never a mix and never a half-built one.

CREATE TABLE read_model_pointer (
    singleton    BOOLEAN     PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    generation   BIGINT      NOT NULL CHECK (generation >= 0),
    schema_name  TEXT        NOT NULL,
    switched_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO read_model_pointer (generation, schema_name) VALUES (0, 'public');

-- Every generation a rebuild started, and where it is: 'loading' (rows being written, no
-- indexes yet), 'indexed' (complete up to its offsets, catching up), 'live', 'retired'.
CREATE TABLE read_model_builds (
    generation   BIGINT      PRIMARY KEY CHECK (generation > 0),
    schema_name  TEXT        NOT NULL UNIQUE,
    -- Events before this instant were not projected (`rebuild --since`); NULL: the whole log.
    since        TIMESTAMPTZ,
    phase        TEXT        NOT NULL CHECK (phase IN ('loading', 'indexed', 'live', 'retired')),
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What readers (the query service) select from: always the live generation's tables.
CREATE SCHEMA read_model;
CREATE VIEW read_model.resources AS SELECT * FROM public.resources;
CREATE VIEW read_model.availability AS SELECT * FROM public.availability;
CREATE VIEW read_model.reservations AS SELECT * FROM public.reservations;
CREATE VIEW read_model.projection_offsets AS SELECT * FROM public.projection_offsets;
