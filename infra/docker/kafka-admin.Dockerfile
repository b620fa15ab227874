# syntax=docker/dockerfile:1.7
# kafka-admin: Kafka's command-line tools with the MSK IAM sign-in, for the deploy bootstrap
# (infra/k8s/base/bootstrap/kafka-access.sh), which makes the topics and the services' ACLs as
# an IAM principal. Built and pushed to ECR as holdfast/kafka-admin next to the services:
#   docker build -f infra/docker/kafka-admin.Dockerfile -t holdfast/kafka-admin .
# The Kafka version matches the local stack's (infra/docker/docker-compose.yml).

FROM apache/kafka:4.1.1
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="holdfast-kafka-admin" \
      org.opencontainers.image.description="Kafka tools with the MSK IAM sign-in, for the Holdfast deploy bootstrap" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Holdfast"
# software.amazon.msk:aws-msk-iam-auth 2.4.0 from Maven Central, the shaded jar (SASL mechanism
# AWS_MSK_IAM with the AWS SDK's credentials chain, so the pod's IRSA role), pinned by digest.
# checkov:skip=CKV_DOCKER_4:ADD fetches one jar from Maven Central, verified by its sha256, which COPY cannot
ADD --checksum=sha256:b758405bd032d0aa3579eabe3fc3344da7003d723c4bb687767924450da7bbfd --chmod=444 \
    https://repo1.maven.org/maven2/software/amazon/msk/aws-msk-iam-auth/2.4.0/aws-msk-iam-auth-2.4.0-all.jar \
    /opt/kafka/libs/aws-msk-iam-auth-2.4.0-all.jar
# A one-shot tool run by a Job: no long-running process to probe.
HEALTHCHECK NONE
# uid 65532, as the Job's pod runs it (the base image's appuser is 1000).
USER 65532:65532
ENTRYPOINT ["/bin/bash"]
