DROP TABLE prompt_safety_results;
DROP TABLE generation_outputs;
DROP TABLE generations;
DROP TABLE projects;
