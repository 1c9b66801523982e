package emulator

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// maxJobs bounds the jobs kept; the oldest is forgotten first (its monitor answers 404).
const maxJobs = 64

// jobStore holds the jobs of actions answered 202 Accepted (ProfileDell). A job completes
// when the power transition its action started ends.
type jobStore struct {
	mu    sync.Mutex
	seq   int
	done  map[string]time.Time // job Id -> when it completes
	order []string
}

// add records a job completing at done and returns its Id.
func (j *jobStore) add(done time.Time) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	id := fmt.Sprintf("JID_%012d", j.seq)
	if j.done == nil {
		j.done = map[string]time.Time{}
	}
	j.done[id] = done
	j.order = append(j.order, id)
	if len(j.order) > maxJobs {
		delete(j.done, j.order[0])
		j.order = append([]string(nil), j.order[1:]...)
	}
	return id
}

// get returns when job id completes.
func (j *jobStore) get(id string) (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	done, ok := j.done[id]
	return done, ok
}

// count returns how many jobs were created.
func (j *jobStore) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

// jobURI returns the path of job id, its task monitor.
func (e *Emulator) jobURI(id string) string { return e.managerURI() + "/Jobs/" + id }

// answerWithJob answers an accepted reset with 202 Accepted and a job as its task monitor
// (Location), complete when the system's power transition ends.
func answerWithJob(e *Emulator, w http.ResponseWriter, s *system) {
	now := time.Now()
	s.mu.Lock()
	s.advance(now)
	done := now
	if n := len(s.steps); n > 0 {
		done = s.steps[n-1].at
	}
	s.mu.Unlock()
	uri := e.jobURI(e.jobs.add(done))
	w.Header().Set("Location", uri)
	writeJSON(w, http.StatusAccepted, e.jobJSON(uri, false))
}

// serveJob answers GET of a job's task monitor: 202 with the running task until the job is
// complete, then 200 with the completed task.
func (e *Emulator) serveJob(w http.ResponseWriter, r *http.Request, id string) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	done, ok := e.jobs.get(id)
	if !ok {
		notFound(w, r)
		return
	}
	uri := e.jobURI(id)
	if time.Now().Before(done) {
		w.Header().Set("Location", uri)
		writeJSON(w, http.StatusAccepted, e.jobJSON(uri, false))
		return
	}
	writeJSON(w, http.StatusOK, e.jobJSON(uri, true))
}

// jobJSON renders a job as a Redfish Task.
func (e *Emulator) jobJSON(uri string, complete bool) obj {
	state, pct := "Running", 50
	if complete {
		state, pct = "Completed", 100
	}
	return obj{
		"@odata.type": "#Task.v1_7_1.Task", "@odata.id": uri, "Id": uri[len(e.managerURI()+"/Jobs/"):],
		"Name": "Task", "TaskState": state, "TaskStatus": "OK", "PercentComplete": pct,
		"TaskMonitor": uri,
	}
}

// JobCount returns how many actions the emulator answered with 202 Accepted and a task
// monitor.
func (e *Emulator) JobCount() int { return e.jobs.count() }
