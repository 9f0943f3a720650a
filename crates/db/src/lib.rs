//! The database: one `Store` trait, one implementation per backend (SQLite, PostgreSQL).
