-- The table @APP@/notes reads. pxl-serve applies the files of this folder
-- in name order, once each, before it serves (pxl-serve(1), MIGRATIONS):
-- to change the schema later, add 002_something.sql; never edit a file
-- that was applied.
CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        text TEXT NOT NULL
);
INSERT INTO notes (text) VALUES ('Welcome to @APP@');
