package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/message"
)

// redfishTask is the part of a Redfish Task resource (or of a task monitor's answer) the
// client reads.
type redfishTask struct {
	ODataID         string `json:"@odata.id"`
	TaskState       string `json:"TaskState"`
	TaskStatus      string `json:"TaskStatus"`
	TaskMonitor     string `json:"TaskMonitor"`
	PercentComplete number `json:"PercentComplete"`
	Messages        []struct {
		Message string `json:"Message"`
	} `json:"Messages"`
}

// taskRefOf finds the task monitor of an action's response: the Location header, else the
// TaskMonitor or @odata.id of a Task body. A response without one (200 or 204 without a
// task) means the action is done: the zero TaskRef. A reference to another host is refused.
func (c *Client) taskRefOf(resp *response) (bmc.TaskRef, error) {
	ref := resp.header.Get("Location")
	if ref == "" && len(resp.body) > 0 {
		var t redfishTask
		if json.Unmarshal(resp.body, &t) == nil && t.TaskState != "" {
			ref = t.TaskMonitor
			if ref == "" {
				ref = t.ODataID
			}
		}
	}
	if ref == "" {
		if resp.status == http.StatusAccepted {
			return bmc.TaskRef{}, fmt.Errorf("redfish: %w: the BMC accepted the action but named no task monitor", bmc.ErrNotSupported)
		}
		return bmc.TaskRef{}, nil
	}
	if _, _, err := c.resolve(ref); err != nil {
		return bmc.TaskRef{}, err
	}
	return bmc.TaskRef{URI: pathOf(ref)}, nil
}

// Task reads a task monitor (or a Task resource) with one GET: 202 Accepted means the task
// runs; any other success is the Task, or, from a task monitor that answers with the
// action's own response, the finished operation.
func (c *Client) Task(ctx context.Context, ref bmc.TaskRef) (bmc.TaskStatus, error) {
	if ref.URI == "" {
		return bmc.TaskStatus{State: bmc.TaskCompleted, PercentComplete: 100}, nil
	}
	resp, err := c.do(ctx, http.MethodGet, ref.URI, nil, nil)
	if err != nil {
		return bmc.TaskStatus{}, err
	}
	var t redfishTask
	isTask := len(resp.body) > 0 && json.Unmarshal(resp.body, &t) == nil && t.TaskState != ""
	st := bmc.TaskStatus{State: bmc.TaskCompleted, PercentComplete: 100}
	if isTask {
		st = bmc.TaskStatus{State: taskState(t.TaskState, t.TaskStatus), PercentComplete: int(min(max(t.PercentComplete.int64(), 0), 100)),
			Message: taskMessage(t)}
	}
	if resp.status == http.StatusAccepted {
		// The monitor says it runs, whatever a body says.
		st.State = bmc.TaskRunning
	}
	return st, nil
}

// taskState maps a Redfish TaskState (and TaskStatus) to a bmc.TaskState. States the
// client does not know count as running: the caller's own deadline ends them.
func taskState(state, health string) bmc.TaskState {
	switch state {
	case "Completed":
		if health == "Critical" {
			return bmc.TaskException
		}
		return bmc.TaskCompleted
	case "Exception":
		return bmc.TaskException
	case "Killed", "Cancelled":
		return bmc.TaskCancelled
	}
	return bmc.TaskRunning
}

// taskMessage is the task's last non-empty message, whitespace collapsed and bounded.
func taskMessage(t redfishTask) string {
	for i := len(t.Messages) - 1; i >= 0; i-- {
		if msg := strings.Join(strings.Fields(t.Messages[i].Message), " "); msg != "" {
			return message.Truncate(msg, maxErrorMessage)
		}
	}
	return ""
}
