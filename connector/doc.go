// Package connector holds the vocabulary shared by every part of appwrite-sync: a Change
// decoded from an Appwrite webhook or read from the REST API, its Version (the order in which
// changes to one row are applied), the table key, and the error types that steer control flow
// (permanent vs retryable sink errors, configuration errors that point at a file and line).
//
// Sub-packages do the work: webhook (verify + decode), ledger (durable record + delivery),
// sink/* (Meilisearch and Postgres adapters), appwrite (REST client), backfill (scans), admin.
package connector
