-- Per-type rate limits: at most rate_max claims of the type start in any rate_per_ms ms.
ALTER TABLE types
  ADD COLUMN rate_max integer,
  ADD COLUMN rate_per_ms integer,
  -- Claims of the type started under a rate limit, ever: the number of the newest start.
  ADD COLUMN claims_started bigint NOT NULL DEFAULT 0;
-- The starts a rate limit reads, numbered per type. Claim n may start once claim
-- n - rate_max started rate_per_ms ago or more: a claim reads one key per errand it takes,
-- whatever the limit, and only the newest rate_max starts (and any still in the window) are
-- kept.
CREATE TABLE claim_starts (
  type    text NOT NULL,
  seq     bigint NOT NULL,
  started bigint NOT NULL,
  PRIMARY KEY (type, seq)
);
