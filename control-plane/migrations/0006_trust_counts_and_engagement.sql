-- Migration 0006: counts that add up (expired messages and soft-bounce streaks counted apart), the
-- engagement a tenant declares it reports, and the rehabilitation still to do under the unlock rule.

ALTER TABLE tenant_daily_metrics
  ADD COLUMN streak_bounces bigint NOT NULL DEFAULT 0 CHECK (streak_bounces >= 0),
  ADD COLUMN expired        bigint NOT NULL DEFAULT 0 CHECK (expired >= 0);

-- from the stored events, by the rule of domain/trust/rollup.ts (UTC days)
UPDATE tenant_daily_metrics m SET streak_bounces = s.n
  FROM (SELECT tenant_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, lane, count(*) AS n
          FROM delivery_events WHERE outcome = 'hard_bounce' AND record_type = 'SoftBounceStreak' AND tenant_id IS NOT NULL
         GROUP BY 1, 2, 3) s
 WHERE m.tenant_id = s.tenant_id AND m.day = s.day AND m.lane = s.lane;
UPDATE tenant_daily_metrics m SET expired = s.n
  FROM (SELECT tenant_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, lane, count(*) AS n
          FROM delivery_events WHERE outcome = 'expired' AND tenant_id IS NOT NULL
         GROUP BY 1, 2, 3) s
 WHERE m.tenant_id = s.tenant_id AND m.day = s.day AND m.lane = s.lane;

-- the engagement terms (opens, replies) the tenant reports for its external mail; the others take
-- their prior (trust settings)
ALTER TABLE tenants
  ADD COLUMN engagement_reported text[] NOT NULL DEFAULT '{}'
    CHECK (array_position(engagement_reported, NULL) IS NULL AND cardinality(engagement_reported) <= 20);

-- clean warming sends still needed to unlock, as of computed_at (NULL: not locked, or clean sends
-- alone cannot unlock the tenant)
ALTER TABLE tenant_trust
  ADD COLUMN rehab_remaining_sends integer CHECK (rehab_remaining_sends >= 0);
