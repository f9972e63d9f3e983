package setup

import "runtime"

func goos() string { return runtime.GOOS }
