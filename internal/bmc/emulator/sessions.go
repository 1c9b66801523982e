package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
)

// serveSessions routes /redfish/v1/SessionService/...
func (e *Emulator) serveSessions(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 0:
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, obj{
				"@odata.type": "#SessionService.v1_1_9.SessionService", "@odata.id": sessSvcPath,
				"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true,
				"SessionTimeout": 1800, "Sessions": ref(sessionsPath),
			})
		}
	case segs[0] != "Sessions":
		notFound(w, r)
	case len(segs) == 1:
		switch r.Method {
		case http.MethodGet:
			e.mu.RLock()
			ids := make([]int, 0, len(e.sessionIDs))
			for id := range e.sessionIDs {
				n, _ := strconv.Atoi(id)
				ids = append(ids, n)
			}
			e.mu.RUnlock()
			slices.Sort(ids)
			members := make([]obj, 0, len(ids))
			for _, id := range ids {
				members = append(members, ref(sessionsPath+"/"+strconv.Itoa(id)))
			}
			writeJSON(w, http.StatusOK, collectionOf("#SessionCollection.SessionCollection", sessionsPath, "Session Collection", members))
		case http.MethodPost:
			e.createSession(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
	case len(segs) == 2:
		id := segs[1]
		e.mu.Lock()
		token, ok := e.sessionIDs[id]
		var sess *session
		if ok {
			sess = e.sessions[token]
		}
		if ok && r.Method == http.MethodDelete {
			delete(e.sessionIDs, id)
			delete(e.sessions, token)
		}
		e.mu.Unlock()
		if !ok {
			notFound(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, sessionJSON(sess))
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodDelete)
		}
	default:
		notFound(w, r)
	}
}

func sessionJSON(s *session) obj {
	return obj{
		"@odata.type": "#Session.v1_7_0.Session", "@odata.id": sessionsPath + "/" + s.id,
		"Id": s.id, "Name": "User Session", "UserName": s.username,
	}
}

// createSession handles POST .../Sessions with {"UserName","Password"}.
func (e *Emulator) createSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserName string `json:"UserName"`
		Password string `json:"Password"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])

	e.mu.Lock()
	if !e.credentialsMatch(req.UserName, req.Password) && !e.accountMatchLocked(req.UserName, req.Password) {
		e.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "InsufficientPrivilege", "Invalid user name or password.")
		return
	}
	e.sessionSeq++
	sess := &session{id: strconv.Itoa(e.sessionSeq), token: token, username: req.UserName}
	e.sessions[token] = sess
	e.sessionIDs[sess.id] = token
	e.mu.Unlock()

	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", sessionsPath+"/"+sess.id)
	writeJSON(w, http.StatusCreated, sessionJSON(sess))
}
