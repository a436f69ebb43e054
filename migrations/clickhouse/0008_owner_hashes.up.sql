-- Attribution gives every touch and conversion its owner under the
-- identity rule (docs/policies.md) and groups and joins them by it. Owners
-- are numbers, not strings: hashing an account id or a visitor id for
-- every row of a report was a fifth of its cost, so the engine computes
-- the hashes once, as rows are written (docs/scaling.md, "Attribution").
--
-- An owner hash is cityHash64 of a prefix and an id, with its two lowest
-- bits saying whose it is: 0 an account ("u" and the account id), 2 a
-- browser ("v" and the visitor id), 1 a conversion sent with neither ("!"
-- and its event id, which pairs with nothing). An account and a browser
-- can never share a hash, whatever their ids.
--
-- The columns are MATERIALIZED: no one writes them, ClickHouse computes
-- them from the ids when a row is inserted and again whenever an id is
-- updated, so a cleared id leaves no hash of itself behind. An erasure
-- deletes their rows with the rest. They carry the category of the ids
-- they are computed from.
ALTER TABLE touches ADD COLUMN IF NOT EXISTS owner_hash UInt64
    MATERIALIZED if(user_id != '', bitAnd(cityHash64('u', user_id), 18446744073709551612),
                    bitOr(bitAnd(cityHash64('v', visitor_id), 18446744073709551612), 2))
    COMMENT 'user.unique_id.analytics_id';
ALTER TABLE conversions ADD COLUMN IF NOT EXISTS owner_hash UInt64
    MATERIALIZED multiIf(user_id != '', bitAnd(cityHash64('u', user_id), 18446744073709551612),
                         visitor_id != '', bitOr(bitAnd(cityHash64('v', visitor_id), 18446744073709551612), 2),
                         bitOr(cityHash64('!', event_id), 1))
    COMMENT 'user.unique_id.analytics_id';
ALTER TABLE visitor_links ADD COLUMN IF NOT EXISTS visitor_hash UInt64
    MATERIALIZED bitOr(bitAnd(cityHash64('v', visitor_id), 18446744073709551612), 2)
    COMMENT 'user.device.cookie_id';
ALTER TABLE visitor_links ADD COLUMN IF NOT EXISTS user_hash UInt64
    MATERIALIZED bitAnd(cityHash64('u', user_id), 18446744073709551612)
    COMMENT 'user.unique_id';

-- The rows written before this migration: until the mutations have run,
-- reads compute the hashes on the fly, with the same result.
ALTER TABLE touches MATERIALIZE COLUMN owner_hash;
ALTER TABLE conversions MATERIALIZE COLUMN owner_hash;
ALTER TABLE visitor_links MATERIALIZE COLUMN visitor_hash;
ALTER TABLE visitor_links MATERIALIZE COLUMN user_hash;
