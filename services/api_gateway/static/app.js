const API = "/api/v0/data_pipeline";
