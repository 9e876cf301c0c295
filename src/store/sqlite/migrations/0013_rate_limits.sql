-- Per-type rate limits: at most rate_max claims of the type start in any rate_per_ms ms.
ALTER TABLE types ADD COLUMN rate_max INTEGER;
ALTER TABLE types ADD COLUMN rate_per_ms INTEGER;
-- Claims of the type started under a rate limit, ever: the number of the newest start.
ALTER TABLE types ADD COLUMN claims_started INTEGER NOT NULL DEFAULT 0;
-- The starts a rate limit reads, numbered per type. Claim n may start once claim
-- n - rate_max started rate_per_ms ago or more: a claim reads one key per errand it takes,
-- whatever the limit, and only the newest rate_max starts (and any still in the window) are
-- kept.
CREATE TABLE claim_starts (
  type    TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  started INTEGER NOT NULL,
  PRIMARY KEY (type, seq)
) WITHOUT ROWID;
