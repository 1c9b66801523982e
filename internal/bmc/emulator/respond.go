package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

func collectionOf(odataType, path, name string, members []obj) obj {
	return obj{
		"@odata.type":         odataType,
		"@odata.id":           path,
		"Name":                name,
		"Members":             members,
		"Members@odata.count": len(members),
	}
}

// decodeBody decodes a JSON request body into v, answering 400 if it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err == nil && len(bytes.TrimSpace(data)) == 0 {
		err = fmt.Errorf("empty body")
	}
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "MalformedJSON", "The request body could not be parsed: "+err.Error())
		return false
	}
	return true
}

// allow answers 405 unless the request uses one of methods (HEAD is allowed with GET).
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) || (r.Method == http.MethodHead && slices.Contains(methods, http.MethodGet)) {
		return true
	}
	methodNotAllowed(w, methods...)
	return false
}

func methodNotAllowed(w http.ResponseWriter, methods ...string) {
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "OperationNotAllowed", "The HTTP method is not allowed on this resource.")
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "ResourceNotFound", "The resource "+r.URL.Path+" was not found.")
}

func notInList(w http.ResponseWriter, prop, value string) {
	writeError(w, http.StatusBadRequest, "PropertyValueNotInList",
		fmt.Sprintf("The value %q for the property %s is not in the list of acceptable values.", value, prop))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeError answers with a Redfish error body.
func writeError(w http.ResponseWriter, status int, messageID, message string) {
	writeJSON(w, status, obj{
		"error": obj{
			"code":    registry + "GeneralError",
			"message": "A general error has occurred. See ExtendedInfo for more information.",
			"@Message.ExtendedInfo": []obj{{
				"@odata.type": "#Message.v1_1_1.Message",
				"MessageId":   registry + messageID,
				"Message":     message,
				"Severity":    "Warning",
			}},
		},
	})
}
