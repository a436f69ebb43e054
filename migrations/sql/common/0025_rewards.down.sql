DROP TABLE reward_records;
