package bmc

import "context"

// DriveInfo is one physical drive of a system, as a wipe needs it.
type DriveInfo struct {
	// URI is the Redfish path of the drive, e.g. /redfish/v1/Systems/1/Storage/1/Drives/0.
	URI           string
	Name          string
	Model         string
	Serial        string
	CapacityBytes int64
	// SecureEraseSupported: the drive offers the Drive.SecureErase action.
	SecureEraseSupported bool
}

// TaskRef names a long-running operation on the BMC: its task monitor. The zero TaskRef is
// an operation that finished when it was accepted.
type TaskRef struct {
	URI string
}

// TaskState is the state of a BMC task, reduced to what a caller decides on.
type TaskState string

// Task states.
const (
	// TaskRunning: not finished yet (Redfish New, Starting, Running, Pending, Suspended, ...).
	TaskRunning TaskState = "Running"
	// TaskCompleted: finished successfully.
	TaskCompleted TaskState = "Completed"
	// TaskException: finished with an error (Redfish Exception, or Completed with a Critical
	// TaskStatus).
	TaskException TaskState = "Exception"
	// TaskCancelled: cancelled or killed before it finished.
	TaskCancelled TaskState = "Cancelled"
)

// Done reports whether the task will not change any more.
func (s TaskState) Done() bool { return s != TaskRunning }

// TaskStatus is one observation of a task.
type TaskStatus struct {
	State TaskState
	// PercentComplete as the BMC reports it (0 if it does not).
	PercentComplete int
	// Message is the BMC's last message about the task: text from a peer, whitespace
	// collapsed and cut to a bound. Never put it into a condition or event as it is.
	Message string
}

// DriveEraser erases the drives of a system through the BMC. SecureErase issues the erase
// and returns its task; Task reads the task once, so that a controller polls by requeueing
// instead of waiting.
type DriveEraser interface {
	// Drives lists the physical drives of all storage subsystems of a system.
	Drives(ctx context.Context, systemURI string) ([]DriveInfo, error)
	// SecureErase starts a Drive.SecureErase of the drive. A drive without the action yields
	// ErrNotSupported without a request to erase.
	SecureErase(ctx context.Context, driveURI string) (TaskRef, error)
	// Task reads the state of a task with one request (none for the zero TaskRef).
	Task(ctx context.Context, ref TaskRef) (TaskStatus, error)
}
