package redfish

import (
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

const testDrive = testSystem + "/Storage/1/Drives/0"

func taskBody(state, status, msg string) map[string]any {
	return map[string]any{
		"@odata.id": "/redfish/v1/TaskService/Tasks/5", "TaskState": state, "TaskStatus": status,
		"PercentComplete": 40, "Messages": []any{map[string]any{"Message": msg}},
	}
}

// TestTaskStates: one GET per call, mapped from the monitor's status and the Task's state.
func TestTaskStates(t *testing.T) {
	const monitor = "/redfish/v1/TaskService/Tasks/5"
	long := strings.Repeat("x ", 400)
	for _, tc := range []struct {
		name    string
		answer  http.HandlerFunc
		want    bmc.TaskState
		wantMsg string
	}{
		{"monitor 202 without a body", reply(http.StatusAccepted, nil, nil), bmc.TaskRunning, ""},
		{"monitor 202 with a task", reply(http.StatusAccepted, nil, taskBody("Running", "OK", "Erasing")), bmc.TaskRunning, "Erasing"},
		{"202 wins over a task that says done", reply(http.StatusAccepted, nil, taskBody("Completed", "OK", "")), bmc.TaskRunning, ""},
		{"task running", reply(http.StatusOK, nil, taskBody("Running", "OK", "")), bmc.TaskRunning, ""},
		{"task pending", reply(http.StatusOK, nil, taskBody("Pending", "OK", "")), bmc.TaskRunning, ""},
		{"task completed", reply(http.StatusOK, nil, taskBody("Completed", "OK", "Done")), bmc.TaskCompleted, "Done"},
		{"completed but critical", reply(http.StatusOK, nil, taskBody("Completed", "Critical", "Media error")), bmc.TaskException, "Media error"},
		{"exception", reply(http.StatusOK, nil, taskBody("Exception", "Critical", "Media\n error")), bmc.TaskException, "Media error"},
		{"killed", reply(http.StatusOK, nil, taskBody("Killed", "Warning", "")), bmc.TaskCancelled, ""},
		{"cancelled", reply(http.StatusOK, nil, taskBody("Cancelled", "Warning", "")), bmc.TaskCancelled, ""},
		{"monitor answers the action's 204", reply(http.StatusNoContent, nil, nil), bmc.TaskCompleted, ""},
		{"monitor answers a non-task body", reply(http.StatusOK, nil, map[string]any{"Id": "0"}), bmc.TaskCompleted, ""},
		{"long message is bounded", reply(http.StatusOK, nil, taskBody("Exception", "Critical", long)), bmc.TaskException, long[:maxErrorMessage] + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, map[string]http.HandlerFunc{"GET " + monitor: tc.answer})
			st, err := f.client(t).Task(t.Context(), bmc.TaskRef{URI: monitor})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(st.State).To(Equal(tc.want))
			g.Expect(st.Message).To(Equal(tc.wantMsg))
			g.Expect(f.count("GET", monitor)).To(Equal(1))
		})
	}
}

// TestTaskErrors: a vanished task is ErrNotFound; the zero TaskRef is done without a request.
func TestTaskErrors(t *testing.T) {
	g := NewWithT(t)
	f := newFakeBMC(t, nil)
	c := f.client(t)
	_, err := c.Task(t.Context(), bmc.TaskRef{URI: "/redfish/v1/TaskService/Tasks/9"})
	g.Expect(err).To(MatchError(bmc.ErrNotFound))
	st, err := c.Task(t.Context(), bmc.TaskRef{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st.State).To(Equal(bmc.TaskCompleted))
	g.Expect(f.requests()).To(HaveLen(1))
}

// TestSecureEraseTaskRef: the task monitor comes from Location, else from a Task body
// (TaskMonitor before @odata.id); 204 means done; 202 without a monitor and a monitor on
// another host are errors.
func TestSecureEraseTaskRef(t *testing.T) {
	action := testDrive + "/Actions/Drive.SecureErase"
	drive := map[string]any{"@odata.id": testDrive, "Actions": map[string]any{"#Drive.SecureErase": map[string]any{"target": action}}}
	for _, tc := range []struct {
		name    string
		answer  http.HandlerFunc
		want    string
		wantErr error
	}{
		{"Location", reply(http.StatusAccepted, map[string]string{"Location": "/redfish/v1/TaskService/Tasks/3"}, nil), "/redfish/v1/TaskService/Tasks/3", nil},
		{"TaskMonitor in the body", reply(http.StatusAccepted, nil, map[string]any{"@odata.id": "/redfish/v1/TaskService/Tasks/4", "TaskState": "New", "TaskMonitor": "/redfish/v1/TaskMonitors/4"}), "/redfish/v1/TaskMonitors/4", nil},
		{"task @odata.id", reply(http.StatusAccepted, nil, map[string]any{"@odata.id": "/redfish/v1/TaskService/Tasks/4", "TaskState": "New"}), "/redfish/v1/TaskService/Tasks/4", nil},
		{"done at once", reply(http.StatusNoContent, nil, nil), "", nil},
		{"accepted without a monitor", reply(http.StatusAccepted, nil, nil), "", bmc.ErrNotSupported},
		{"monitor on another host", reply(http.StatusAccepted, map[string]string{"Location": "http://evil.example/x"}, nil), "", nil},
		{"refused", reply(http.StatusBadRequest, nil, redfishErrorBody("ActionNotSupported", "no")), "", bmc.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFakeBMC(t, map[string]http.HandlerFunc{"GET " + testDrive: reply(http.StatusOK, nil, drive), "POST " + action: tc.answer})
			ref, err := f.client(t).SecureErase(t.Context(), testDrive)
			switch {
			case tc.wantErr != nil:
				g.Expect(err).To(MatchError(tc.wantErr))
			case tc.name == "monitor on another host":
				g.Expect(err).To(MatchError(ContainSubstring("not on the BMC's host")))
			default:
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(ref.URI).To(Equal(tc.want))
			}
			g.Expect(f.count("POST", action)).To(Equal(1))
		})
	}
}

// TestDrivesAreBounded: the drives of all storage subsystems together are bounded like one
// collection; no drive is read past the bound.
func TestDrivesAreBounded(t *testing.T) {
	g := NewWithT(t)
	st := testSystem + "/Storage/1"
	var drives []any
	for i := range 5 {
		drives = append(drives, map[string]any{"@odata.id": st + "/Drives/" + string(rune('0'+i))})
	}
	f := newFakeBMC(t, map[string]http.HandlerFunc{
		"GET " + testSystem:              reply(http.StatusOK, nil, map[string]any{"Storage": map[string]any{"@odata.id": testSystem + "/Storage"}}),
		"GET " + testSystem + "/Storage": reply(http.StatusOK, nil, members(st)),
		"GET " + st:                      reply(http.StatusOK, nil, map[string]any{"Drives": drives}),
	})
	_, err := f.client(t, func(c *Config) { c.MaxCollectionMembers = 4 }).Drives(t.Context(), testSystem)
	g.Expect(err).To(MatchError(ErrResponseTooLarge))
	g.Expect(f.count("GET", st+"/Drives/0")).To(BeZero())
}
