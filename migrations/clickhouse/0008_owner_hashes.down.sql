ALTER TABLE touches DROP COLUMN IF EXISTS owner_hash;
ALTER TABLE conversions DROP COLUMN IF EXISTS owner_hash;
ALTER TABLE visitor_links DROP COLUMN IF EXISTS visitor_hash;
ALTER TABLE visitor_links DROP COLUMN IF EXISTS user_hash;
