-- hookd schema, version 22: changes nothing. It first took version 21's
-- revision back from the rows whose events all came before their first attempt;
-- but a row this hookd revised since (an event taken in while it was claimed, or
-- after a replay, or a call cut after it went out) looks the same, and would have
-- gone out again under an id its receiver had had. A repeat under a new id is the
-- lesser harm: version 21's revisions stay.
SELECT 1;
