//go:build !unix

package plugproc

import "os"

// termSignal: no signal to catch where there are no process groups.
var termSignal os.Signal

// killOwnGroup: without process groups there is nothing but the plugin
// itself to end.
func killOwnGroup() {}
