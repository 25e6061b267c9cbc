# No `shell: true`: a command string given to /bin/sh can run anything its text
# (and every template in it) turns into. Give `run` as a list, or as words.
package corral.shell

import rego.v1

deny_shell contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	job.shell
	msg := "`shell: true` is not allowed: give `run` as a list of arguments instead"
}
