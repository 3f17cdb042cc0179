package meilitest_test

import (
	"net/http"
	"testing"

	"github.com/meilisearch/meilisearch-go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

func TestIndexLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)

	task := b.succeeded(t)(b.client.CreateIndex(ctx, &meilisearch.IndexConfig{Uid: "rows", PrimaryKey: "id"}))
	require.Equal(t, meilisearch.TaskTypeIndexCreation, task.Type)
	require.Equal(t, "id", task.Details.PrimaryKey)
	b.failed(t, meilisearch.APIErrCodeIndexAlreadyExists)(b.client.CreateIndex(ctx, &meilisearch.IndexConfig{Uid: "rows"}))

	_, err := b.client.CreateIndex(ctx, &meilisearch.IndexConfig{Uid: "bad uid!"})
	me := apiError(t, err, http.StatusBadRequest, meilisearch.APIErrCodeInvalidIndexUID)
	require.Contains(t, me.APIError.Message, "`bad uid!` is not a valid index uid")

	info, err := b.client.GetIndex(ctx, "rows")
	require.NoError(t, err)
	require.Equal(t, "rows", info.UID)
	require.Equal(t, "id", info.PrimaryKey)
	require.False(t, info.CreatedAt.IsZero())

	b.succeeded(t)(b.client.CreateIndex(ctx, &meilisearch.IndexConfig{Uid: "other"}))
	list, err := b.client.ListIndexes(ctx, &meilisearch.IndexesQuery{Limit: 1, Offset: 1})
	require.NoError(t, err)
	require.Equal(t, int64(2), list.Total)
	require.Len(t, list.Results, 1)
	require.Equal(t, "rows", list.Results[0].UID, "sorted by uid")

	// The primary key can change while the index is empty, not once it holds documents.
	b.succeeded(t)(b.client.Index("rows").UpdateIndex(ctx, &meilisearch.UpdateIndexRequestParams{PrimaryKey: "key"}))
	b.succeeded(t)(b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"key": "a"}}, nil))
	task = b.failed(t, meilisearch.APIErrCodeIndexPrimaryKeyAlreadyExists)(b.client.Index("rows").UpdateIndex(ctx, &meilisearch.UpdateIndexRequestParams{PrimaryKey: "id"}))
	require.Equal(t, "Index `rows`: Index already has a primary key: `key`.", task.Error.Message)
	b.failed(t, meilisearch.APIErrCodeIndexNotFound)(b.client.Index("missing").UpdateIndex(ctx, &meilisearch.UpdateIndexRequestParams{PrimaryKey: "id"}))

	stats, err := b.client.Index("rows").GetStats(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), stats.NumberOfDocuments)
	require.Equal(t, map[string]int64{"key": 1}, stats.FieldDistribution)
}

func TestSettings(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")

	// Settings on a missing index create it.
	task := b.succeeded(t)(idx.UpdateSettings(ctx, &meilisearch.Settings{
		FilterableAttributes: []string{"$id", "status"},
		SortableAttributes:   []string{"n"},
	}))
	require.Equal(t, meilisearch.TaskTypeSettingsUpdate, task.Type)
	require.Equal(t, []any{"$id", "status"}, task.Details.FilterableAttributes)
	info, ok := b.srv.Index("rows")
	require.True(t, ok)
	require.Empty(t, info.PrimaryKey)
	require.Equal(t, []any{"$id", "status"}, info.Settings["filterableAttributes"])

	settings, err := idx.GetSettings(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"$id", "status"}, settings.FilterableAttributes)
	require.Equal(t, []string{"*"}, settings.SearchableAttributes)
	require.Equal(t, []string{"words", "typo", "proximity", "attribute", "sort", "exactness"}, settings.RankingRules)
	require.True(t, settings.FacetSearch)

	b.succeeded(t)(idx.UpdateSearchableAttributes(ctx, &[]string{"title"}))
	got, err := idx.GetSearchableAttributes(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"title"}, *got)
	b.succeeded(t)(idx.ResetSearchableAttributes(ctx))
	got, err = idx.GetSearchableAttributes(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"*"}, *got)

	b.succeeded(t)(idx.UpdateStopWords(ctx, &[]string{"the"}))
	b.succeeded(t)(idx.UpdateSynonyms(ctx, &map[string][]string{"car": {"auto"}}))
	b.succeeded(t)(idx.UpdateRankingRules(ctx, &[]string{"words"}))
	b.succeeded(t)(idx.UpdateDisplayedAttributes(ctx, &[]string{"id", "title"}))
	syn, err := idx.GetSynonyms(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"car": {"auto"}}, *syn)
	b.succeeded(t)(idx.UpdateTypoTolerance(ctx, &meilisearch.TypoTolerance{Enabled: false, MinWordSizeForTypos: meilisearch.MinWordSizeForTypos{OneTypo: 4, TwoTypos: 8}}))

	// The granular object form of filterableAttributes.
	b.succeeded(t)(idx.UpdateFilterableAttributes(ctx, &[]any{
		map[string]any{"attributePatterns": []string{"sta*"}, "features": map[string]any{"filter": map[string]any{"equality": true, "comparison": false}}},
	}))
	filters, err := idx.GetFilterableAttributes(ctx)
	require.NoError(t, err)
	require.Len(t, *filters, 1)

	// Invalid settings are refused synchronously.
	r := do(t, http.MethodPatch, b.srv.URL+"/indexes/rows/settings", []byte(`{"filterableAttributes": "status"}`), map[string]string{"Content-Type": "application/json"})
	requireErrorBody(t, r, http.StatusBadRequest, "invalid_settings_filterable_attributes", "invalid_request")
	r = do(t, http.MethodPatch, b.srv.URL+"/indexes/rows/settings", []byte(`{"nope": 1}`), map[string]string{"Content-Type": "application/json"})
	requireErrorBody(t, r, http.StatusBadRequest, "bad_request", "invalid_request")

	b.succeeded(t)(idx.ResetSettings(ctx))
	settings, err = idx.GetSettings(ctx)
	require.NoError(t, err)
	require.Empty(t, settings.FilterableAttributes)
	require.Equal(t, []string{"*"}, settings.DisplayedAttributes)

	_, err = b.client.Index("missing").GetSettings(ctx)
	apiError(t, err, http.StatusNotFound, meilisearch.APIErrCodeIndexNotFound)
}
