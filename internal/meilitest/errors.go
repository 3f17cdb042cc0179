package meilitest

import (
	"fmt"
	"net/http"
)

// APIError is Meilisearch's error object, as found in error responses and in failed tasks.
type APIError struct {
	Message string `json:"message"`
	Code    string `json:"code"`
	Type    string `json:"type"`
	Link    string `json:"link"`
}

// Error types Meilisearch uses.
const (
	ErrorTypeInvalidRequest = "invalid_request"
	ErrorTypeInternal       = "internal"
	ErrorTypeAuth           = "auth"
	ErrorTypeSystem         = "system"
)

// Error codes the double produces. They are Meilisearch's own.
const (
	CodeBadRequest                      = "bad_request"
	CodeDocumentNotFound                = "document_not_found"
	CodeFeatureNotEnabled               = "feature_not_enabled"
	CodeIndexAlreadyExists              = "index_already_exists"
	CodeIndexNotFound                   = "index_not_found"
	CodeIndexPrimaryKeyAlreadyExists    = "index_primary_key_already_exists"
	CodeIndexPrimaryKeyMultipleFound    = "index_primary_key_multiple_candidates_found"
	CodeIndexPrimaryKeyNoCandidateFound = "index_primary_key_no_candidate_found"
	CodeInternal                        = "internal"
	CodeInvalidAPIKey                   = "invalid_api_key"
	CodeInvalidContentType              = "invalid_content_type"
	CodeInvalidDocumentFields           = "invalid_document_fields"
	CodeInvalidDocumentID               = "invalid_document_id"
	CodeInvalidDocumentIDs              = "invalid_document_ids"
	CodeInvalidDocumentLimit            = "invalid_document_limit"
	CodeInvalidDocumentOffset           = "invalid_document_offset"
	CodeInvalidIndexLimit               = "invalid_index_limit"
	CodeInvalidIndexOffset              = "invalid_index_offset"
	CodeInvalidIndexPrimaryKey          = "invalid_index_primary_key"
	CodeInvalidIndexUID                 = "invalid_index_uid"
	CodeInvalidTaskAfterEnqueuedAt      = "invalid_task_after_enqueued_at"
	CodeInvalidTaskAfterFinishedAt      = "invalid_task_after_finished_at"
	CodeInvalidTaskAfterStartedAt       = "invalid_task_after_started_at"
	CodeInvalidTaskBeforeEnqueuedAt     = "invalid_task_before_enqueued_at"
	CodeInvalidTaskBeforeFinishedAt     = "invalid_task_before_finished_at"
	CodeInvalidTaskBeforeStartedAt      = "invalid_task_before_started_at"
	CodeInvalidTaskCanceledBy           = "invalid_task_canceled_by"
	CodeInvalidTaskFrom                 = "invalid_task_from"
	CodeInvalidTaskIndexUIDs            = "invalid_task_index_uids"
	CodeInvalidTaskLimit                = "invalid_task_limit"
	CodeInvalidTaskReverse              = "invalid_task_reverse"
	CodeInvalidTaskStatuses             = "invalid_task_statuses"
	CodeInvalidTaskTypes                = "invalid_task_types"
	CodeInvalidTaskUIDs                 = "invalid_task_uids"
	CodeMalformedPayload                = "malformed_payload"
	CodeMissingAuthorizationHeader      = "missing_authorization_header"
	CodeMissingContentType              = "missing_content_type"
	CodeMissingDocumentID               = "missing_document_id"
	CodeMissingIndexUID                 = "missing_index_uid"
	CodeMissingPayload                  = "missing_payload"
	CodeMissingTaskFilters              = "missing_task_filters"
	CodeNotFound                        = "not_found"
	CodePayloadTooLarge                 = "payload_too_large"
	CodeTaskNotFound                    = "task_not_found"
)

// codeInfo is the HTTP status and error type Meilisearch attaches to a code.
type codeInfo struct {
	status int
	typ    string
}

var codeTable = map[string]codeInfo{
	CodeDocumentNotFound:           {http.StatusNotFound, ErrorTypeInvalidRequest},
	CodeIndexNotFound:              {http.StatusNotFound, ErrorTypeInvalidRequest},
	CodeTaskNotFound:               {http.StatusNotFound, ErrorTypeInvalidRequest},
	CodeNotFound:                   {http.StatusNotFound, ErrorTypeInvalidRequest},
	"batch_not_found":              {http.StatusNotFound, ErrorTypeInvalidRequest},
	"api_key_not_found":            {http.StatusNotFound, ErrorTypeInvalidRequest},
	CodeIndexAlreadyExists:         {http.StatusConflict, ErrorTypeInvalidRequest},
	"api_key_already_exists":       {http.StatusConflict, ErrorTypeInvalidRequest},
	CodePayloadTooLarge:            {http.StatusRequestEntityTooLarge, ErrorTypeInvalidRequest},
	CodeInvalidContentType:         {http.StatusUnsupportedMediaType, ErrorTypeInvalidRequest},
	CodeMissingContentType:         {http.StatusUnsupportedMediaType, ErrorTypeInvalidRequest},
	CodeMissingAuthorizationHeader: {http.StatusUnauthorized, ErrorTypeAuth},
	CodeInvalidAPIKey:              {http.StatusForbidden, ErrorTypeAuth},
	CodeInternal:                   {http.StatusInternalServerError, ErrorTypeInternal},
	"index_creation_failed":        {http.StatusInternalServerError, ErrorTypeInternal},
	"database_size_limit_reached":  {http.StatusInternalServerError, ErrorTypeInternal},
	"invalid_state":                {http.StatusInternalServerError, ErrorTypeInternal},
	"unretrievable_document":       {http.StatusInternalServerError, ErrorTypeInternal},
	"io_error":                     {http.StatusInternalServerError, ErrorTypeSystem},
	"no_space_left_on_device":      {http.StatusInternalServerError, ErrorTypeSystem},
	"too_many_open_files":          {http.StatusInternalServerError, ErrorTypeSystem},
	"invalid_store_file":           {http.StatusInternalServerError, ErrorTypeSystem},
	"too_many_search_requests":     {http.StatusServiceUnavailable, ErrorTypeSystem},
}

// lookupCode returns the status and type of code; unknown codes are 400 invalid_request,
// which is what the large majority of Meilisearch's codes are.
func lookupCode(code string) codeInfo {
	if info, ok := codeTable[code]; ok {
		return info
	}
	return codeInfo{http.StatusBadRequest, ErrorTypeInvalidRequest}
}

// newAPIError builds the error object for code with its real type and documentation link.
func newAPIError(code, message string) *APIError {
	return &APIError{
		Message: message,
		Code:    code,
		Type:    lookupCode(code).typ,
		Link:    "https://docs.meilisearch.com/errors#" + code,
	}
}

func apiErrorf(code, format string, args ...any) *APIError {
	return newAPIError(code, fmt.Sprintf(format, args...))
}

func (e *APIError) status() int { return lookupCode(e.Code).status }

// Error makes an APIError usable as a Go error in test helpers.
func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// injectedErrorCode picks a plausible Meilisearch code for an injected HTTP status.
func injectedErrorCode(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return CodeMissingAuthorizationHeader
	case status == http.StatusForbidden:
		return CodeInvalidAPIKey
	case status == http.StatusNotFound:
		return CodeNotFound
	case status == http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case status == http.StatusUnsupportedMediaType:
		return CodeInvalidContentType
	case status >= 500:
		return CodeInternal
	default:
		return CodeBadRequest
	}
}
