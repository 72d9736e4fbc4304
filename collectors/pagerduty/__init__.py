"""PagerDuty: services, escalation, on-call schedules, notification rules, incidents (REST API v2)."""
