package backfill

// MassDelete exposes massDelete to the external tests.
var MassDelete = massDelete
