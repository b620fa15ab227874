output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's CIDR block."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Subnets of the EKS nodes, one per zone."
  value       = aws_subnet.private[*].id
}

output "data_subnet_ids" {
  description = "Subnets of RDS, ElastiCache and MSK, one per zone."
  value       = aws_subnet.data[*].id
}
