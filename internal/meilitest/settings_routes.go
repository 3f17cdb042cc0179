package meilitest

import (
	"encoding/json"
	"net/http"
)

func (s *Server) getSettings(rq *request) reply {
	return s.withIndex(rq, func(ix *index) reply {
		return reply{status: http.StatusOK, body: ix.settings.marshal()}
	})
}

func (s *Server) getSetting(rq *request, key string) reply {
	return s.withIndex(rq, func(ix *index) reply {
		v, ok := ix.settings.values[key]
		if !ok {
			v = json.RawMessage("null")
		}
		return reply{status: http.StatusOK, body: v}
	})
}

func (s *Server) patchSettings(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	var body any
	if e := requireJSON(rq, &body); e != nil {
		return errorReply(e)
	}
	if _, ok := body.(map[string]any); !ok {
		return errorReply(apiErrorf(CodeBadRequest, "Invalid value type: expected an object, but found %s: `%s`", describeValue(body), compactJSON(body)))
	}
	var patch map[string]json.RawMessage
	_ = json.Unmarshal(rq.body, &patch)
	return s.enqueueSettings(rq, uid, patch)
}

func (s *Server) putSetting(rq *request, key string) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	var body json.RawMessage
	if e := requireJSON(rq, &body); e != nil {
		return errorReply(e)
	}
	return s.enqueueSettings(rq, uid, map[string]json.RawMessage{key: body})
}

func (s *Server) resetSettings(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	patch := map[string]json.RawMessage{}
	for _, k := range settingKeys {
		patch[k] = json.RawMessage("null")
	}
	for _, k := range optionalSettingKeys {
		patch[k] = json.RawMessage("null")
	}
	return s.enqueueSettings(rq, uid, patch)
}

func (s *Server) resetSetting(rq *request, key string) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	return s.enqueueSettings(rq, uid, map[string]json.RawMessage{key: json.RawMessage("null")})
}

// enqueueSettings validates patch now (invalid settings are refused synchronously) and
// enqueues the settingsUpdate, whose details echo the patch; a reset shows the default.
func (s *Server) enqueueSettings(rq *request, uid string, patch map[string]json.RawMessage) reply {
	if e := validateSettings(patch); e != nil {
		return errorReply(e)
	}
	d := details{}
	for _, k := range append(append([]string{}, settingKeys...), optionalSettingKeys...) {
		v, ok := patch[k]
		if !ok {
			continue
		}
		if string(v) == "null" {
			if def, ok := settingDefaults[k]; ok {
				v = def
			}
		}
		d = append(d, detail{k, json.RawMessage(compactCopy(v))})
	}
	t := s.enqueue(uid, TaskSettingsUpdate, d, &settingsOp{patch: patch}, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

// settingsOp applies a settings patch, creating the index when it does not exist, as
// Meilisearch does.
type settingsOp struct{ patch map[string]json.RawMessage }

func (op *settingsOp) failed() details { return nil }

func (op *settingsOp) apply(s *Server, t *task) (details, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indexes[t.indexUID]
	if ix == nil {
		ix = s.createIndex(t.indexUID, "")
	}
	ix.settings.apply(op.patch)
	ix.updatedAt = s.now()
	return nil, nil
}
