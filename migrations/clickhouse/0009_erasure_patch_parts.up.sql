-- An erasure deletes the subject's rows from every warehouse table with a
-- lightweight DELETE run as a lightweight update (lightweight_delete_mode =
-- 'lightweight_update'): the DELETE writes a small patch part that masks
-- the rows, and every SELECT applies it at once. Run as a mutation instead,
-- the DELETE waits for the merges of freshly inserted parts, which made an
-- erasure straight after a bulk of events take 6 to 15 seconds
-- (docs/scaling.md, "Access export and erasure"). Merges apply the patch
-- parts to the data and drop them.
--
-- Patch parts find their rows by block number and offset, which MergeTree
-- stores only when these settings are on. Changing them rewrites no part:
-- parts written after store both columns, and a DELETE reaches the rows
-- of the parts written before as well (TestPatchPartDeletes in
-- analytics/warehouse). The columns, their comments (the data categories)
-- and the rows stay as they are. Lightweight updates need ClickHouse 25.7
-- or later.
ALTER TABLE events MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
ALTER TABLE touches MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
ALTER TABLE conversions MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
ALTER TABLE visitor_links MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
