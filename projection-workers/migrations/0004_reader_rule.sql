-- The reader rule's state beside each partition's next offset. Readers of the events topic
-- count a record only if it carries the current tenure's writer token and the next sequence
-- number (`holdfast_tenure::ReaderRule`), so where a projection stands in a partition is the
-- pair (next offset, tenure there): `tenure_token` is the token of the last claim before
-- `next_offset`, `tenure_next_seq` the sequence number the next valid record must carry. Both
-- are NULL while no claim came before `next_offset`. Written in the same transaction as the
-- effects and the offset; a worker positioned at `next_offset` resumes the rule from them.
--
-- Every generation's offsets table gets the columns: `public` (generation 0) and the schemas
-- of rebuilt generations (live, being built, or kept after retirement), so a rebuild started
-- before this migration can be resumed and switched to. The rebuild's shadow tables are
-- created with the same columns in the same order (`replay/rebuild/shadow.rs`).
--
-- Rows written before this migration have no tenure. That is right for logs written before
-- claims existed (their records are unmarked, hence void, anyway); a read model projected by
-- an older worker from a log that already holds claims must be rebuilt (`holdfast-replay
-- rebuild`).
DO $$
DECLARE
    generation_schema TEXT;
BEGIN
    FOR generation_schema IN
        SELECT 'public'
        UNION SELECT schema_name FROM public.read_model_builds
        UNION SELECT schema_name FROM public.read_model_pointer
    LOOP
        IF to_regclass(format('%I.projection_offsets', generation_schema)) IS NULL THEN
            CONTINUE;
        END IF;
        EXECUTE format(
            'ALTER TABLE %I.projection_offsets
                 ADD COLUMN IF NOT EXISTS tenure_token UUID,
                 ADD COLUMN IF NOT EXISTS tenure_next_seq BIGINT CHECK (tenure_next_seq >= 0)',
            generation_schema);
        IF NOT EXISTS (
            SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = generation_schema AND c.conname = 'projection_offsets_tenure_whole'
        ) THEN
            EXECUTE format(
                'ALTER TABLE %I.projection_offsets ADD CONSTRAINT projection_offsets_tenure_whole
                     CHECK ((tenure_token IS NULL) = (tenure_next_seq IS NULL))',
                generation_schema);
        END IF;
    END LOOP;
END
$$;

-- `SELECT *` in a view is expanded when the view is defined: define it again so readers of the
-- live generation see the new columns too.
DO $$
BEGIN
    EXECUTE format('CREATE OR REPLACE VIEW read_model.projection_offsets AS SELECT * FROM %I.projection_offsets',
                   (SELECT schema_name FROM public.read_model_pointer));
END
$$;
