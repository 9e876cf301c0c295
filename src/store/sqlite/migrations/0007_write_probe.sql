-- One row that /health rewrites: a write that must commit (and reach the disk) for the server
-- to call itself healthy, since reads can succeed while every write fails.
CREATE TABLE write_probe (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  at INTEGER NOT NULL
);
