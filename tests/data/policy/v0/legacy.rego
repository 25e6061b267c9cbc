package corral.legacy

deny[msg] {
	job := input.jobs[name]
	job.retries > 2
	msg := {"job": name, "msg": sprintf("%d retries is too many", [job.retries])}
}
