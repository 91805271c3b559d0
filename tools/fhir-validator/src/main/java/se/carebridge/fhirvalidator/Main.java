package se.carebridge.fhirvalidator;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.stream.Stream;
import org.hl7.fhir.r4.model.OperationOutcome;

/**
 * carebridge's FHIR R4 validator, two modes in one jar.
 *
 * <pre>
 * java -jar fhir-validator.jar [--ig DIR] FILE-OR-DIR...     batch: one JSON line per file
 *     {"file":..., "errors":N, "warnings":N, "issues":[{severity, code, expression, location, message, messageId}]}
 *     exit 1 if any file has an error or fatal issue, 2 on bad usage
 * java -jar fhir-validator.jar [--ig DIR] --serve --port N    server on 127.0.0.1:N
 *     POST /validate[?profile=CANONICAL]  body: FHIR JSON  ->  200, an OperationOutcome
 *     GET  /health                        ->  200 {"status":"ok","conformanceResources":N}
 * </pre>
 *
 * The server prints "listening on 127.0.0.1:PORT" on stdout once it answers (the launcher waits for it).
 */
public final class Main {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_BODY = 16 * 1024 * 1024;

  private Main() {}

  public static void main(String[] args) throws Exception {
    noNetwork();
    Path ig = null;
    Integer port = null;
    boolean serve = false;
    List<Path> inputs = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--ig" -> ig = Path.of(args[++i]);
        case "--serve" -> serve = true;
        case "--port" -> port = Integer.parseInt(args[++i]);
        default -> inputs.add(Path.of(args[i]));
      }
    }
    if (serve != inputs.isEmpty() || (serve && port == null)) {
      System.err.println("usage: fhir-validator [--ig DIR] FILE-OR-DIR... | [--ig DIR] --serve --port N");
      System.exit(2);
    }
    Engine engine = new Engine(ig);
    if (serve) {
      serve(engine, port);
    } else {
      System.exit(batch(engine, inputs));
    }
  }

  /**
   * Belt and braces: the engine has no terminology server and fetches nothing, and every
   * URL connection any library might still open goes through a proxy on a closed loopback
   * port, so it fails at once instead of reaching tx.fhir.org or anything else.
   */
  private static void noNetwork() {
    ProxySelector.setDefault(new ProxySelector() {
      @Override public List<Proxy> select(URI uri) {
        return List.of(new Proxy(Proxy.Type.HTTP, new InetSocketAddress(InetAddress.getLoopbackAddress(), 9)));
      }
      @Override public void connectFailed(URI uri, SocketAddress sa, IOException ioe) {}
    });
  }

  private static int batch(Engine engine, List<Path> inputs) throws IOException {
    List<Path> files = new ArrayList<>();
    for (Path input : inputs) {
      if (Files.isDirectory(input)) {
        try (Stream<Path> walk = Files.walk(input)) {
          walk.filter(p -> p.toString().endsWith(".json")).sorted().forEach(files::add);
        }
      } else {
        files.add(input);
      }
    }
    boolean anyError = false;
    for (Path file : files) {
      OperationOutcome oo = engine.validate(Files.readString(file), null);
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("file", file.toString());
      int errors = count(oo, true);
      line.put("errors", errors);
      line.put("warnings", count(oo, false));
      List<Map<String, Object>> issues = new ArrayList<>();
      for (OperationOutcome.OperationOutcomeIssueComponent issue : oo.getIssue()) {
        if (issue.getCode() == OperationOutcome.IssueType.INFORMATIONAL && oo.getIssue().size() == 1) {
          continue;
        }
        Map<String, Object> i = new LinkedHashMap<>();
        i.put("severity", issue.getSeverity().toCode());
        i.put("code", issue.getCode().toCode());
        i.put("expression", Engine.first(issue.getExpression()));
        i.put("location", Engine.first(issue.getLocation()));
        i.put("message", issue.getDiagnostics());
        i.put("messageId", Engine.messageId(issue));
        issues.add(i);
      }
      line.put("issues", issues);
      System.out.println(JSON.writeValueAsString(line));
      anyError |= errors > 0;
    }
    System.out.flush();
    return anyError ? 1 : 0;
  }

  private static int count(OperationOutcome oo, boolean errors) {
    int n = 0;
    for (OperationOutcome.OperationOutcomeIssueComponent issue : oo.getIssue()) {
      OperationOutcome.IssueSeverity s = issue.getSeverity();
      boolean isError = s == OperationOutcome.IssueSeverity.ERROR || s == OperationOutcome.IssueSeverity.FATAL;
      if (errors ? isError : s == OperationOutcome.IssueSeverity.WARNING) {
        n++;
      }
    }
    return n;
  }

  private static void serve(Engine engine, int port) throws IOException {
    // warm the engine (definitions, snapshots, FHIRPath) before saying we listen
    engine.validate("{\"resourceType\":\"Basic\",\"code\":{\"text\":\"warm-up\"}}", null);
    HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 16);
    server.setExecutor(Executors.newFixedThreadPool(2));
    server.createContext("/health", exchange -> {
      if (!exchange.getRequestMethod().equals("GET")) {
        send(exchange, 405, "{\"error\":\"GET only\"}", "application/json");
        return;
      }
      send(exchange, 200, "{\"status\":\"ok\",\"conformanceResources\":" + engine.conformanceResources + "}",
          "application/json");
    });
    server.createContext("/validate", exchange -> {
      try {
        if (!exchange.getRequestMethod().equals("POST")) {
          send(exchange, 405, "{\"error\":\"POST only\"}", "application/json");
          return;
        }
        byte[] body;
        try (InputStream in = exchange.getRequestBody()) {
          body = in.readNBytes(MAX_BODY + 1);
        }
        if (body.length > MAX_BODY) {
          send(exchange, 413, "{\"error\":\"body over " + MAX_BODY + " bytes\"}", "application/json");
          return;
        }
        String profile = query(exchange.getRequestURI().getRawQuery()).get("profile");
        OperationOutcome oo = engine.validate(new String(body, StandardCharsets.UTF_8), profile);
        send(exchange, 200, engine.ctx.newJsonParser().encodeResourceToString(oo), "application/fhir+json");
      } catch (RuntimeException e) {
        send(exchange, 500, JSON.writeValueAsString(Map.of("error", String.valueOf(e))), "application/json");
      }
    });
    server.start();
    System.out.println("listening on 127.0.0.1:" + server.getAddress().getPort());
    System.out.flush();
  }

  private static Map<String, String> query(String raw) {
    Map<String, String> out = new LinkedHashMap<>();
    if (raw == null) {
      return out;
    }
    for (String pair : raw.split("&")) {
      int eq = pair.indexOf('=');
      if (eq > 0) {
        out.put(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
            URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
      }
    }
    return out;
  }

  private static void send(HttpExchange exchange, int status, String body, String type) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", type);
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }
}
