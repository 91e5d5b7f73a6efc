-- hookd schema, version 15: the audit log's entries found by age for the retention
-- pass. It looked at the entries of the lowest ids only, taking ids to grow with
-- time; entries written while the clock ran ahead, and then stepped back, held the
-- lowest ids with a time still to come, and every older entry behind them stayed.
CREATE INDEX audit_log_at ON audit_log(at);
