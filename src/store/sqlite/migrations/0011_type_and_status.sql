-- Errands of one type and one status in id order (the dashboard's combined filter, and the
-- bulk retry and delete that walk it): a range of this index, nothing to filter or sort.
-- errands_type (type, id) stays: a type's errands of every status in id order need it.
CREATE INDEX errands_type_status ON errands (type, status, id);
