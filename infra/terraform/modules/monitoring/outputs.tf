output "prometheus_remote_write_url" {
  description = "Remote-write endpoint for the in-cluster Prometheus."
  value       = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/remote_write"
}

output "grafana_endpoint" {
  description = "Managed Grafana URL."
  value       = aws_grafana_workspace.this.endpoint
}
