// Package mapping is the YAML layer that turns an Appwrite row into a Meilisearch document and
// a warehouse (Postgres) row. It parses and validates the `tables:` section of the config (or a
// separate `mapping_file:`), renders the plan printed by `appwrite-sync validate`, and projects
// rows. It does no I/O beyond reading a mapping file: sinks call it with rows from the ledger.
//
// # Syntax
//
//	tables:
//	  - database: main                 # Appwrite database id, or "*" for every database
//	    table: posts                   # Appwrite table id (== legacy collection id)
//	    where:                         # optional; all conditions must hold (AND)
//	      status: published            #   equality (a list column matches if one element equals)
//	      category: {in: [news, blog]} #   one of
//	      archived: {not: true}        #   not equal (missing and null count as "not true")
//	      kind: {not_in: [draft]}      #   none of
//	      deleted_at: null             #   null or missing
//	    permissions: {field: read_roles}   # optional: roles of the read("…") entries of $permissions
//	    meilisearch:                   # omit to not index the table; `meilisearch: {}` = all defaults
//	      index: posts                 # default: the table id
//	      primary_key: id              # default "id"; holds the encoded $id
//	      fields:                      # default: every non-$ column of the row
//	        - title                    #   a column, written under its own name
//	        - "$createdAt"             #   system attributes by their $ names
//	        - author.name              #   a dotted path, written under the name "author.name"
//	        - author_name: author.name #   rename: output name: source path
//	        - comment_bodies: {from: comments.body}   # the same, long form
//	      # exclude: [secret]          # instead of fields: every non-$ column except these
//	      searchable: [title, author_name]
//	      filterable: [author_name]    # the permissions field is added automatically
//	      sortable: ["$createdAt"]
//	      displayed: ["*"]
//	      ranking_rules: [words, typo, proximity, attribute, sort, exactness, "$createdAt:desc"]
//	      synonyms: {phone: [mobile, cellphone]}
//	      stop_words: [the, a]
//	      shared_index: false          # true on every table that writes the same index
//	    postgres:                      # omit to not warehouse the table
//	      table: posts                 # in warehouse.schema; default: the table id
//	      columns:                     # in this order, after the system columns
//	        title: text                #   name: type        (source path = the name)
//	        views: bigint
//	        author_name: {from: author.name, type: text}   # name: {from: path, type: type}
//	      delete: hard                 # hard (default) | soft (keep the row, set deleted_at)
//	      indexes:                     # optional extra indexes
//	        - columns: [author_name]                 # name defaults to posts_author_name_idx
//	        - {name: posts_title_key, columns: [title], unique: true}
//	        - {columns: [read_roles], using: gin}    # btree (default), gin, brin, hash
//	      history: true                # or {retention: 2160h}: also <table>_history, every version
//
// A table without a meilisearch or a postgres section is recorded in the ledger only: the
// related table of a relationship.
//
// # Relationships
//
//	relationships:                 # per table: column -> related table
//	  author: authors              #   same database as the table (a "*" table: the row's)
//	  tags: {table: tags, database: other}
//
// The related table must be listed under `tables:` (New refuses it otherwise, with a
// did-you-mean); Plan prints the relationship graph. Table.Links reads a row's links from its
// relationship columns (an id, an object with "$id", a list of either, or null; a column left
// out of a payload keeps the links recorded before). The ledger records the links with each
// row and, at delivery, replaces each relationship column with the newest recorded versions
// of the related rows (null when unknown or deleted), as deep as the paths read
// (Mapping.JoinDepth), so `author.name` and `author.company.name` resolve like nested rows.
// The fingerprints include the relationships a table reads through.
//
// # Paths
//
// A source path is dotted: `title`, `author.name` and `author.$id` walk into a to-one
// relationship (a nested row object), `comments.body` fans out over a to-many relationship and
// yields the flat list of every element's body (missing and null bodies left out, list values
// spliced in), `tags.0` indexes a list. `$id`, `$createdAt`, `$updatedAt`, `$sequence` and
// `$permissions` name system attributes. When a path does not resolve through nested
// objects, keys that contain dots are tried ("meta.v1" as one column key). A missing path is
// null, never an error.
//
// # Meilisearch documents
//
// A document holds the primary key field (default "id") = encodeID($id), "$id" = the raw
// Appwrite id, the selected fields (an explicit field whose path is missing is null), and the
// permissions field. With shared_index the primary key is encodeID("database/table/$id") and
// "$table" = "database/table" is added (and made filterable). The default selection copies
// every top-level column whose name does not start with "$", except those in exclude and a
// column named like the primary key or the permissions field (these names are taken). In an
// explicit list the primary key, "$id", "$table" (shared) and the permissions field are
// reserved.
//
// Settings may only name fields the documents have: with an explicit field list a name must
// be a field, "$id", the primary key, "$table" (shared), the permissions field, or a dotted
// path inside one of them; names with "*" are patterns and not checked. With the default
// selection the columns are unknown until rows arrive, so only names that cannot exist are
// rejected: "$" attributes other than "$id" (and "$table") and excluded columns. Tables may
// share an index only with shared_index: true on all of them, the same primary_key and
// identical settings.
//
// # Warehouse rows
//
// Every warehouse table has the system columns id text primary key ($id), created_at
// timestamptz ($createdAt), updated_at timestamptz not null ($updatedAt, the version guard),
// version_hash bytea not null, default empty, and version_seq bigint (both written by the sink:
// the version's content hash and the ledger's seq, which breaks ties of updated_at), the
// mapped columns in declared order, the permissions column (text[]) when configured, synced_at
// timestamptz not null default now(), and with delete: soft deleted_at timestamptz; plus an
// index on updated_at.
// User columns may not use system names. Supported types: text, bigint, integer, double
// precision, numeric, boolean, timestamptz, date, jsonb, text[], bigint[]. See
// Table.PostgresValues for how each converts; nothing is coerced silently.
//
// # Row history
//
// With postgres.history (true, or {retention: duration}) every distinct version of a row is
// also kept in <table>_history: id, op (upsert | delete), updated_at, version_hash, actor
// (X-Appwrite-Webhook-User-Id, NULL when empty), event (the first, fully qualified event;
// NULL for versions read from the API), source (webhook, backfill, reconcile, replay),
// recorded_at, data (the version's mapped columns as jsonb) and synced_at; the primary key is
// the version (id, updated_at, op, version_hash). The view <table>_history_changes adds
// version_number, previous_op, previous_updated_at, previous_data and changed_columns, in
// version order. A retention removes versions whose updated_at is older than it. See History
// and PGProjection.HistoryDDL; the ledger package documents how versions are kept and
// delivered.
//
// # Where
//
// A row that does not match `where` must be absent from both sinks (the sinks delete it).
// Literals compare by type: strings with strings, booleans with booleans (YAML true/false),
// numbers numerically (5 equals 5.0); a quoted "5" is a string and never equals the number 5.
//
// # Fingerprints
//
// MeiliProjection.Fingerprint and PGProjection.Fingerprint are short stable hashes of each
// projection's normalized spec, including `where` and `permissions`, so the engine re-projects
// a sink's rows only when that sink's spec changed.
package mapping
