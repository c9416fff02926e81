-- Migration 0015: how many messages each node's kumod holds, as the node reports it on every policy
-- pull (X-KCP-Queued-Messages, kumod's own message_count gauge), and when. Deleting a bought node's
-- server destroys its spool, so retire-from-provider refuses while the node holds mail or has not
-- said so recently (issue 15). Not a gateway fact: the gate triggers do not list these columns.
ALTER TABLE nodes ADD COLUMN queued_messages bigint CHECK (queued_messages >= 0);
ALTER TABLE nodes ADD COLUMN queued_messages_at timestamptz;
