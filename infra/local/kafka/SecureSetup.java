// The SCRAM users and ACLs of the local Kafka's SASL_SSL listener, set through the plain
// listener (whose ANONYMOUS principal is the local super user). Idempotent: credentials are
// upserted and existing ACLs are left as they are. Run by infra/local/components/kafka.sh as a
// single-file Java program on Kafka's own class path:
//
//   java -cp "<kafka libs>/*" SecureSetup.java BOOTSTRAP SECRETS_DIR PREFIX...
//
// Every service user's password is read from SECRETS_DIR/kafka-<user>, never from the command
// line. For each topic PREFIX (the deployment's HOLDFAST_TOPIC_PREFIX; "" for none) the users
// get exactly what their service does with that layout's topics, and nothing else:
//
//   holdfast-command     read, write and describe the commands, events, replies and owners topics;
//                        describe the others (the topic check at start); join its owners group
//   holdfast-projection  read and describe the events topic; write the dead-letter topic;
//                        describe the others; join its workers group
//
// Neither may create, delete or alter topics: the operator provisions them.

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class SecureSetup {
    static final String COMMAND = "holdfast-command";
    static final String PROJECTION = "holdfast-projection";
    static final List<String> TOPICS = List.of(
        "reservations.commands", "reservations.events", "reservations.replies",
        "reservations.events.dlq", "reservations.snapshots", "reservations.owners");

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: SecureSetup BOOTSTRAP SECRETS_DIR PREFIX...");
            System.exit(2);
        }
        Path secrets = Path.of(args[1]);
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        for (String user : List.of(COMMAND, PROJECTION)) {
            String password = Files.readString(secrets.resolve("kafka-" + user)).trim();
            users.add(new UserScramCredentialUpsertion(
                user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password));
        }
        List<AclBinding> acls = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            acls.addAll(layout(args[i]));
        }
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", args[0]))) {
            admin.alterUserScramCredentials(users).all().get();
            admin.createAcls(acls).all().get();
        }
        System.out.printf("%d SCRAM users, %d ACLs%n", users.size(), acls.size());
    }

    /** The ACLs of one topic layout. */
    static List<AclBinding> layout(String prefix) {
        List<AclBinding> acls = new ArrayList<>();
        for (String topic : TOPICS) {
            acls.add(allow(COMMAND, ResourceType.TOPIC, prefix + topic, AclOperation.DESCRIBE));
            acls.add(allow(PROJECTION, ResourceType.TOPIC, prefix + topic, AclOperation.DESCRIBE));
        }
        for (String topic : List.of(
                "reservations.commands", "reservations.events", "reservations.replies", "reservations.owners")) {
            acls.add(allow(COMMAND, ResourceType.TOPIC, prefix + topic, AclOperation.READ));
            acls.add(allow(COMMAND, ResourceType.TOPIC, prefix + topic, AclOperation.WRITE));
        }
        acls.add(allow(COMMAND, ResourceType.GROUP, prefix + "holdfast.command-owners", AclOperation.READ));
        acls.add(allow(PROJECTION, ResourceType.TOPIC, prefix + "reservations.events", AclOperation.READ));
        acls.add(allow(PROJECTION, ResourceType.TOPIC, prefix + "reservations.events.dlq", AclOperation.WRITE));
        acls.add(allow(PROJECTION, ResourceType.GROUP, prefix + "holdfast.projection-workers", AclOperation.READ));
        return acls;
    }

    static AclBinding allow(String user, ResourceType type, String name, AclOperation operation) {
        return new AclBinding(
            new ResourcePattern(type, name, PatternType.LITERAL),
            new AccessControlEntry("User:" + user, "*", operation, AclPermissionType.ALLOW));
    }
}
