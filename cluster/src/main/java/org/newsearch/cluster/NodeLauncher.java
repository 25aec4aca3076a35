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

    /** The start of the line printed when the node cannot start. */
    static final String FAILED = "node failed to start: ";

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

    /** Exit (closing the node) when the process named by -Dnewsearch.owner.pid exits, if one is named. */
    static void exitWithOwner() {
        String owner = System.getProperty("newsearch.owner.pid");
        if (owner == null) {
            return;
        }
        // a test run that is killed cannot stop its nodes: they must not outlive it on a shared machine
        ProcessHandle.of(Long.parseLong(owner)).ifPresentOrElse(
            handle -> handle.onExit().thenRun(() -> System.exit(0)), () -> System.exit(0));
    }

    /** Build the node from {@code key=value} arguments and start it. */
    static Node startNode(String[] args) throws Exception {
        Settings settings = parseSettings(args);
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings, Map.of(), null, () -> settings.get("node.name", "node"));
        Node node = new ClasspathNode(environment, PLUGINS);
        node.start();
        return node;
    }

    public static void main(String[] args) throws Exception {
        exitWithOwner();
        Node node;
        try {
            node = startNode(args);
        } catch (Exception e) {
            e.printStackTrace();
            // one line that says why, for the caller to show (it reads the last line with this prefix)
            System.err.println(FAILED + e.toString().replace('\n', ' '));
            System.exit(1);
            return;
        }
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
        System.out.println("node started: " + node.settings().get("node.name"));
        System.out.flush();
        stopped.await();  // the node's own threads are daemons: this keeps the JVM alive
    }
}
