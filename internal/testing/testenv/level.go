package testenv

import "go.uber.org/zap/zapcore"

// zapLevelError keeps controller logs quiet in tests unless TESTENV_VERBOSE is set.
const zapLevelError = zapcore.ErrorLevel
