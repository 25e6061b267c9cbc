package corral.broken

import rego.v1

deny contains msg if {
	some name, job in input.jobs
	job.timeout ==
	msg := sprintf("job %s", [name])
}
