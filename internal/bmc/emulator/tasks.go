package emulator

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

const (
	taskSvcPath = "/redfish/v1/TaskService"
	tasksPath   = "/redfish/v1/TaskService/Tasks"

	// maxTasks bounds the tasks kept; the oldest are dropped first.
	maxTasks = 256
)

// task is one long-running operation. Like power transitions it is evaluated lazily: it
// runs from start until end, and a read after end finds it Completed (or Exception when
// fault is set). No timer or goroutine runs per task.
type task struct {
	id         string
	name       string
	start, end time.Time
	fault      string
}

// taskStore holds the tasks of the TaskService. Its zero value is ready to use.
type taskStore struct {
	mu    sync.Mutex
	seq   int
	order []*task
}

// start creates a task that runs for d from now and returns its Id.
func (ts *taskStore) start(name string, now time.Time, d time.Duration, fault string) string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.seq++
	t := &task{id: strconv.Itoa(ts.seq), name: name, start: now, end: now.Add(max(d, 0)), fault: fault}
	ts.order = append(ts.order, t)
	if n := len(ts.order); n > maxTasks {
		ts.order = slices.Clone(ts.order[n-maxTasks:])
	}
	return t.id
}

// get returns a copy of the task with the Id, if it is kept.
func (ts *taskStore) get(id string) (task, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, t := range ts.order {
		if t.id == id {
			return *t, true
		}
	}
	return task{}, false
}

// running reports whether the task with the Id is still running at now.
func (ts *taskStore) running(id string, now time.Time) bool {
	t, ok := ts.get(id)
	return ok && now.Before(t.end)
}

// json renders the task as it is at now.
func (t task) json(now time.Time) obj {
	body := obj{
		"@odata.type": "#Task.v1_7_0.Task", "@odata.id": tasksPath + "/" + t.id,
		"Id": t.id, "Name": t.name, "StartTime": t.start.UTC().Format(time.RFC3339),
		"TaskMonitor": tasksPath + "/" + t.id,
	}
	switch {
	case now.Before(t.end):
		body["TaskState"], body["TaskStatus"] = "Running", "OK"
		total := t.end.Sub(t.start)
		body["PercentComplete"] = int(100 * now.Sub(t.start) / max(total, 1))
		body["Messages"] = []obj{}
	case t.fault != "":
		body["TaskState"], body["TaskStatus"], body["PercentComplete"] = "Exception", "Critical", 100
		body["EndTime"] = t.end.UTC().Format(time.RFC3339)
		body["Messages"] = []obj{{"MessageId": "Base.1.15.GeneralError", "Message": t.fault, "Severity": "Critical"}}
	default:
		body["TaskState"], body["TaskStatus"], body["PercentComplete"] = "Completed", "OK", 100
		body["EndTime"] = t.end.UTC().Format(time.RFC3339)
		body["Messages"] = []obj{{"MessageId": "Base.1.15.Success", "Message": "Successfully Completed Request", "Severity": "OK"}}
	}
	return body
}

// writeTask answers with a task: 202 Accepted and the task monitor in Location while it
// runs (or with status, for the response to the action that started it), else 200.
func (e *Emulator) writeTask(w http.ResponseWriter, status int, id string, now time.Time) {
	t, ok := e.tasks.get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The task "+id+" was not found.")
		return
	}
	if now.Before(t.end) {
		status = http.StatusAccepted
	}
	if status == http.StatusAccepted {
		w.Header().Set("Location", tasksPath+"/"+id)
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, t.json(now))
}

// serveTasks routes /redfish/v1/TaskService/...: the service, its task collection and the
// tasks, whose URI is also their task monitor (202 while running, 200 when done).
func (e *Emulator) serveTasks(w http.ResponseWriter, r *http.Request, segs []string) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	switch {
	case len(segs) == 0:
		writeJSON(w, http.StatusOK, obj{
			"@odata.type": "#TaskService.v1_2_0.TaskService", "@odata.id": taskSvcPath,
			"Id": "TaskService", "Name": "Task Service", "ServiceEnabled": true, "Tasks": ref(tasksPath),
		})
	case segs[0] != "Tasks" || len(segs) > 2:
		notFound(w, r)
	case len(segs) == 1:
		e.tasks.mu.Lock()
		members := make([]obj, 0, len(e.tasks.order))
		for _, t := range e.tasks.order {
			members = append(members, ref(tasksPath+"/"+t.id))
		}
		e.tasks.mu.Unlock()
		writeJSON(w, http.StatusOK, collectionOf("#TaskCollection.TaskCollection", tasksPath, "Task Collection", members))
	default:
		e.writeTask(w, http.StatusOK, segs[1], time.Now())
	}
}
