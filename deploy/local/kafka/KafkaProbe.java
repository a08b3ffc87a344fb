// Tiny Kafka client used by deploy/local/stack.sh and smoke.sh. It runs on the
// broker's own jars (kafka-clients is among them), so checking the broker needs
// neither the kafka-tools artifact (it drags in Kafka Connect, Jetty, Jersey)
// nor Node.
//
//   java -cp '.local/kafka/lib/*:.local/kafka/probe' KafkaProbe ready <bootstrap>
//       exit 0 when a real metadata round trip works (describeCluster + listTopics)
//   java -cp ... KafkaProbe smoke <bootstrap> [topic]
//       create a topic, commit one transaction, abort another, and check that a
//       read_committed consumer sees exactly the committed record
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class KafkaProbe {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: KafkaProbe ready|smoke <bootstrap> [topic]");
            System.exit(2);
        }
        String bootstrap = args[1];
        switch (args[0]) {
            case "ready" -> ready(bootstrap);
            case "smoke" -> smoke(bootstrap, args.length > 2 ? args[2] : "vigil-smoke-" + System.currentTimeMillis());
            default -> {
                System.err.println("unknown command " + args[0]);
                System.exit(2);
            }
        }
    }

    private static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 8000);
        return Admin.create(p);
    }

    /** Metadata round trip: fails until the broker has caught up with the controller. */
    private static void ready(String bootstrap) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            DescribeClusterResult cluster = admin.describeCluster();
            int nodes = cluster.nodes().get(8, TimeUnit.SECONDS).size();
            String controller = String.valueOf(cluster.controller().get(8, TimeUnit.SECONDS));
            Set<String> topics = admin.listTopics().names().get(8, TimeUnit.SECONDS);
            System.out.printf("cluster=%s nodes=%d controller=%s topics=%d%n",
                    cluster.clusterId().get(), nodes, controller, topics.size());
            if (nodes < 1) System.exit(1);
        }
    }

    private static void smoke(String bootstrap, String topic) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(20, TimeUnit.SECONDS);
                System.out.println("created topic " + topic);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
                System.out.println("topic exists " + topic);
            }
        }

        String committed = "committed-" + UUID.randomUUID();
        String aborted = "aborted-" + UUID.randomUUID();
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "vigil-smoke-" + UUID.randomUUID());
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            // initTransactions needs the transaction coordinator, i.e. __transaction_state
            // with replication factor 1 on this single node.
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", aborted)).get();
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", committed)).get();
            producer.commitTransaction();
            System.out.println("transactions: aborted one, committed one");
        }

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, "vigil-smoke-" + UUID.randomUUID());
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        List<String> seen = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30000;
            while (!seen.contains(committed) && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) seen.add(r.value());
            }
            consumer.commitSync(); // exercises the group coordinator / __consumer_offsets
        }
        if (!seen.contains(committed)) fail("committed record not consumed within 30 s; saw " + seen);
        if (seen.contains(aborted)) fail("read_committed consumer saw an aborted record");
        System.out.println("consumed committed record, aborted record hidden: OK");

        try (Admin admin = admin(bootstrap)) { // leave no smoke topics behind
            admin.deleteTopics(List.of(topic)).all().get(20, TimeUnit.SECONDS);
        }
    }

    private static void fail(String msg) {
        System.err.println("FAIL: " + msg);
        System.exit(1);
    }
}
