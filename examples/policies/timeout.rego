# A required `timeout`: every job stops on its own (set it per job or in `defaults`).
# A timeout over the maximum is allowed but warned about.
package corral.timeout

import rego.v1

max_timeout_s := object.get(object.get(data, "corral_settings", {}), "max_timeout_s", 3600)

deny_missing_timeout contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	job.timeout == null
	msg := "no `timeout`: add one to the job or to `defaults`"
}

warn_long_timeout contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	job.timeout > max_timeout_s
	msg := sprintf("timeout of %vs is over %vs: is that intended?", [job.timeout, max_timeout_s])
}
