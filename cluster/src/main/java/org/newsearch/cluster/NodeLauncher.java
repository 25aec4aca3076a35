package org.newsearch.cluster;

import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * Start one OpenSearch node in this JVM from {@code key=value} settings and run until killed.
 *
 * <p>One node per process, so stopping a node is stopping its process. Example:
 * {@code java -cp 'target/classes:target/lib/*' org.newsearch.cluster.NodeLauncher path.home=/tmp/n0
 * cluster.name=local node.name=n0 http.port=9200 transport.port=9300 discovery.type=single-node}
 */
public final class NodeLauncher {

    /** The plugins the official distribution ships as modules that newsearch needs: HTTP and the common analyzers. */
    static final List<Class<? extends Plugin>> PLUGINS = List.of(Netty4Plugin.class, CommonAnalysisPlugin.class);

    /** A node whose plugins come from the classpath instead of a modules/ folder. */
    static final class ClasspathNode extends Node {
        ClasspathNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    private NodeLauncher() {}

    /** Read {@code key=value} arguments as node settings; a value with commas is a list. */
    static Settings parseSettings(String[] args) {
        Settings.Builder builder = Settings.builder()
            // the local cluster shares a developer's disk: never refuse shards for a full disk
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("network.host", "127.0.0.1");
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected key=value, got: " + arg);
            }
            String key = arg.substring(0, eq);
            String value = arg.substring(eq + 1);
            if (value.contains(",")) {
                builder.putList(key, Arrays.asList(value.split(",")));
            } else {
                builder.put(key, value);
            }
        }
        return builder.build();
    }

    public static void main(String[] args) throws Exception {
        Settings settings = parseSettings(args);
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings, Map.of(), null, () -> settings.get("node.name", "node"));
        Node node = new ClasspathNode(environment, PLUGINS);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "node-shutdown"));
        node.start();
        System.out.println("node started: " + settings.get("node.name") + " http " + settings.get("http.port"));
        System.out.flush();
        stopped.await();  // the node's own threads are daemons: this keeps the JVM alive
    }
}
