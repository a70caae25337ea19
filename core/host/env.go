package host

// PluginEnvVars lists the variables of the host's environment that a
// plugin receives; nothing else of it is passed on (go-plugin SkipHostEnv):
//
//	PATH              to find helper programs (and an interpreter)
//	HOME              for per-user configuration
//	TMPDIR            for the plugin's own temporary files
//	TLSPIN_LOG_LEVEL  trace, debug, info, warn or error
//
// On top of these, go-plugin sets its own: the magic cookie
// TLSPIN_VERIFIER_PLUGIN, PLUGIN_PROTOCOL_VERSIONS, PLUGIN_MIN_PORT,
// PLUGIN_MAX_PORT, PLUGIN_CLIENT_CERT (AutoMTLS, only where the kernel
// cannot name a socket's peer: not on Linux, see rpc.HostCredentials) and PLUGIN_UNIX_SOCKET_DIR
// (a directory only the host's user can enter, made for this plugin's
// socket and removed when it stops).
func PluginEnvVars() []string {
	return []string{"PATH", "HOME", "TMPDIR", "TLSPIN_LOG_LEVEL"}
}

// PluginEnv returns the environment to give a plugin (Config.Env): each of
// PluginEnvVars that getenv answers with a non-empty value, as NAME=VALUE.
// Pass os.Getenv, or a function that answers TLSPIN_LOG_LEVEL from a flag.
func PluginEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range PluginEnvVars() {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
