-- Erasures fall back to mutations on tables without these settings.
ALTER TABLE events RESET SETTING enable_block_number_column, enable_block_offset_column;
ALTER TABLE touches RESET SETTING enable_block_number_column, enable_block_offset_column;
ALTER TABLE conversions RESET SETTING enable_block_number_column, enable_block_offset_column;
ALTER TABLE visitor_links RESET SETTING enable_block_number_column, enable_block_offset_column;
