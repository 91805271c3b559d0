package se.carebridge.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.parser.DataFormatException;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.parser.IParserErrorHandler;
import ca.uhn.fhir.parser.json.BaseJsonLikeValue;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.IValidationContext;
import ca.uhn.fhir.validation.IValidatorModule;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SchemaBaseValidator;
import ca.uhn.fhir.validation.SingleValidationMessage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.conformance.ProfileUtilities;
import org.hl7.fhir.r4.fhirpath.ExpressionNode;
import org.hl7.fhir.r4.fhirpath.FHIRPathEngine;
import org.hl7.fhir.r4.hapi.ctx.HapiWorkerContext;
import org.hl7.fhir.r4.model.Base;
import org.hl7.fhir.r4.model.BackboneElement;
import org.hl7.fhir.r4.model.ElementDefinition;
import org.hl7.fhir.r4.model.MetadataResource;
import org.hl7.fhir.r4.model.OperationOutcome;
import org.hl7.fhir.r4.model.PrimitiveType;
import org.hl7.fhir.r4.model.Property;
import org.hl7.fhir.r4.model.Resource;
import org.hl7.fhir.r4.model.StructureDefinition;
import org.hl7.fhir.utilities.validation.ValidationMessage;

/**
 * The validation engine, fully offline, from what Maven Central serves here: HAPI FHIR's
 * parser (every unknown element, wrong JSON type and bad primitive value is an issue),
 * the official R4 XML schemas (cardinality, element order and types, through HAPI's
 * SchemaBaseValidator) and every invariant (ElementDefinition.constraint, FHIRPath) of the R4
 * core StructureDefinitions, of the datatypes under each element, and of a requested profile.
 *
 * It is not HL7's instance validator (org.hl7.fhir.validation, wrapped by HAPI's
 * FhirInstanceValidator in hapi-fhir-validation): neither artifact is served here. What that
 * one does beyond this: terminology bindings, slicing, profile cardinality and types,
 * reference targets. Nothing here opens a network connection (see Main.noNetwork).
 */
final class Engine {
  final FhirContext ctx = FhirContext.forR4();
  private final ConformanceSupport support;
  private final FhirValidator validator;
  private final HapiWorkerContext worker;
  private final FHIRPathEngine fhirPath;
  private final Map<String, Map<String, ElementDefinition>> elementsByType = new ConcurrentHashMap<>();
  private final Map<String, ExpressionNode> expressions = new ConcurrentHashMap<>();
  final int conformanceResources;

  Engine(Path igDir) throws IOException {
    support = new ConformanceSupport(ctx);
    worker = new HapiWorkerContext(ctx, support);
    fhirPath = new FHIRPathEngine(worker);
    conformanceResources = igDir == null ? 0 : support.load(igDir, worker);
    validator = ctx.newValidator();
    validator.setValidateAgainstStandardSchema(false);
    validator.setValidateAgainstStandardSchematron(false);
    validator.registerValidatorModule(new SchemaBaseValidator(ctx));
    validator.registerValidatorModule(new Invariants());
  }

  /** Validates one FHIR JSON document, optionally against a profile (a canonical URL). */
  OperationOutcome validate(String json, String profile) {
    List<SingleValidationMessage> messages = new ArrayList<>();
    Collector collector = new Collector(messages);
    IBaseResource resource;
    try {
      IParser parser = ctx.newJsonParser().setParserErrorHandler(collector);
      resource = parser.parseResource(json);
    } catch (DataFormatException | ClassCastException e) {
      messages.add(message(ResultSeverityEnum.FATAL, "structure", "(document)", e.getMessage()));
      return outcome(messages);
    }
    ca.uhn.fhir.validation.ValidationOptions options = new ca.uhn.fhir.validation.ValidationOptions();
    if (profile != null && !profile.isBlank()) {
      StructureDefinition sd = (StructureDefinition) support.fetchStructureDefinition(profile);
      if (sd == null) {
        messages.add(message(ResultSeverityEnum.ERROR, "not-found", resource.fhirType(),
            "Profile " + profile + " is not among the conformance resources loaded (--ig)"));
        return outcome(messages);
      }
      options.addProfile(profile);
    }
    for (SingleValidationMessage m : validator.validateWithResult(resource, options).getMessages()) {
      if (!schemaDefect(m)) {
        messages.add(m);
      }
    }
    return outcome(messages);
  }

  /**
   * R4's medicationstatement.xsd types MedicationStatement.status as MedicationStatusCodes, a
   * name medication.xsd defines with Medication's codes (active, inactive, entered-in-error):
   * the schema refuses 'stopped', 'on-hold', 'completed'... The parser checks that code against
   * the right value set (an unknown code is an invalidValue issue), so these two schema messages go.
   */
  private static boolean schemaDefect(SingleValidationMessage m) {
    String text = m.getMessage() == null ? "" : m.getMessage();
    return text.contains("'MedicationStatusCodes-list'")
        || text.startsWith("cvc-enumeration-valid") && text.contains("'[active, inactive, entered-in-error]'");
  }

  static SingleValidationMessage message(
      ResultSeverityEnum severity, String code, String location, String text) {
    SingleValidationMessage m = new SingleValidationMessage();
    m.setSeverity(severity);
    m.setMessageId(code);
    m.setLocationString(location);
    m.setMessage(text);
    return m;
  }

  private OperationOutcome outcome(List<SingleValidationMessage> messages) {
    OperationOutcome oo = new OperationOutcome();
    for (SingleValidationMessage m : messages) {
      OperationOutcome.OperationOutcomeIssueComponent issue = oo.addIssue();
      issue.setSeverity(OperationOutcome.IssueSeverity.fromCode(m.getSeverity().getCode()));
      issue.setCode(issueType(m.getMessageId()));
      issue.setDiagnostics(m.getMessage());
      if (m.getLocationString() != null) {
        issue.addExpression(m.getLocationString());
      }
      if (m.getLocationLine() != null) {
        // the schema's findings: a line of the resource's XML rendering, not of the JSON sent
        issue.addLocation("xml Line[" + m.getLocationLine() + "] Col[" + m.getLocationCol() + "]");
      }
    }
    if (messages.isEmpty()) {
      oo.addIssue()
          .setSeverity(OperationOutcome.IssueSeverity.INFORMATION)
          .setCode(OperationOutcome.IssueType.INFORMATIONAL)
          .setDiagnostics("No issues detected during validation");
    }
    return oo;
  }

  private static OperationOutcome.IssueType issueType(String id) {
    if (id == null) {
      return OperationOutcome.IssueType.PROCESSING; // the schema validator's messages
    }
    try {
      return OperationOutcome.IssueType.fromCode(id);
    } catch (Exception e) {
      return OperationOutcome.IssueType.PROCESSING;
    }
  }

  /** The parser's findings: HAPI's lenient handler would only log them. */
  private static final class Collector implements IParserErrorHandler {
    private final List<SingleValidationMessage> out;

    Collector(List<SingleValidationMessage> out) {
      this.out = out;
    }

    private void add(ResultSeverityEnum sev, String code, IParseLocation loc, String text) {
      String where = loc == null || loc.getParentElementName() == null ? "(document)" : loc.getParentElementName();
      out.add(message(sev, code, where, text));
    }

    @Override public void containedResourceWithNoId(IParseLocation l) {
      add(ResultSeverityEnum.ERROR, "structure", l, "Contained resource has no id");
    }
    @Override public void incorrectJsonType(IParseLocation l, String element, BaseJsonLikeValue.ValueType expected,
        BaseJsonLikeValue.ScalarType expectedScalar, BaseJsonLikeValue.ValueType found, BaseJsonLikeValue.ScalarType foundScalar) {
      add(ResultSeverityEnum.ERROR, "structure", l, "Element '" + element + "': expected JSON " + expected
          + (expectedScalar == null ? "" : " " + expectedScalar) + ", found " + found + (foundScalar == null ? "" : " " + foundScalar));
    }
    @Override public void invalidValue(IParseLocation l, String value, String error) {
      add(ResultSeverityEnum.ERROR, "value", l, "Invalid value '" + value + "': " + error);
    }
    @Override public void missingRequiredElement(IParseLocation l, String element) {
      add(ResultSeverityEnum.ERROR, "required", l, "Missing required element '" + element + "'");
    }
    @Override public void unexpectedRepeatingElement(IParseLocation l, String element) {
      add(ResultSeverityEnum.ERROR, "structure", l, "Element '" + element + "' must not repeat");
    }
    @Override public void unknownAttribute(IParseLocation l, String name) {
      add(ResultSeverityEnum.ERROR, "structure", l, "Unknown attribute '" + name + "'");
    }
    @Override public void unknownElement(IParseLocation l, String name) {
      add(ResultSeverityEnum.ERROR, "structure", l, "Unrecognised property '" + name + "'");
    }
    @Override public void unknownReference(IParseLocation l, String ref) {
      add(ResultSeverityEnum.WARNING, "not-found", l, "Unknown reference '" + ref + "'");
    }
    @Override public void invalidInternalReference(IParseLocation l, String ref) {
      add(ResultSeverityEnum.ERROR, "structure", l, "Invalid internal reference '" + ref + "'");
    }
    @Override public void extensionContainsValueAndNestedExtensions(IParseLocation l) {
      add(ResultSeverityEnum.ERROR, "structure", l, "Extension has both a value and nested extensions (ext-1)");
    }
  }

  /**
   * Every constraint of the StructureDefinitions that apply, element by element: the resource
   * type's (or the requested profile's, for the root), each complex datatype's, each contained
   * or entry resource's own. Locations are FHIRPath with indices, as the reference validator writes them.
   */
  private final class Invariants implements IValidatorModule {
    @Override
    public void validateResource(IValidationContext<IBaseResource> context) {
      Resource root = (Resource) context.getResource();
      String rootSd = root.fhirType();
      List<String> profiles = new ArrayList<>(context.getOptions().getProfiles());
      if (!profiles.isEmpty()) {
        rootSd = profiles.get(0);
      }
      walk(context, root, root, root.fhirType(), rootSd, root.fhirType());
    }

    private void walk(IValidationContext<IBaseResource> context, Resource resource, Base node, String location,
        String sd, String edPath) {
      ElementDefinition ed = elements(sd).get(edPath);
      if (ed != null) {
        check(context, resource, node, location, ed);
      }
      required(context, node, location, sd, edPath);
      for (Property property : node.children()) {
        List<Base> values = property.getValues();
        for (int i = 0; i < values.size(); i++) {
          Base child = values.get(i);
          if (child == null || child.isEmpty() && !(child instanceof Resource)) {
            continue;
          }
          String name = property.getName();
          String json = name.endsWith("[x]")
              ? name.substring(0, name.length() - 3) + capitalise(child.fhirType())
              : name;
          String childLocation = location + "." + json + (property.isList() ? "[" + i + "]" : "");
          String childEdPath = edPath + "." + name;
          if (child instanceof Resource r) {
            walk(context, r, r, childLocation, r.fhirType(), r.fhirType());
          } else if (child instanceof BackboneElement || child.fhirType().equals("BackboneElement")
              || child.fhirType().equals("Element") || child.fhirType().contains(".")) {
            walk(context, resource, child, childLocation, sd, childEdPath);
          } else {
            ElementDefinition childEd = elements(sd).get(childEdPath);
            if (childEd != null) {
              check(context, resource, child, childLocation, childEd);
            }
            if (!(child instanceof PrimitiveType<?>)) {
              walk(context, resource, child, childLocation, child.fhirType(), child.fhirType());
            }
          }
        }
      }
    }

    /** Minimum cardinality, named the way HL7's validator names it (the schema says it without a path). */
    private void required(IValidationContext<IBaseResource> context, Base node, String location, String sd,
        String edPath) {
      String prefix = edPath + ".";
      for (Map.Entry<String, ElementDefinition> e : elements(sd).entrySet()) {
        String key = e.getKey();
        ElementDefinition child = e.getValue();
        if (!key.startsWith(prefix) || key.indexOf('.', prefix.length()) >= 0 || child.getMin() == 0
            || child.hasSliceName()) {
          continue;
        }
        String name = key.substring(prefix.length());
        Property property = node.getChildByName(name);
        int found = property == null ? 0 : (int) property.getValues().stream().filter(v -> v != null && !v.isEmpty()).count();
        if (found < child.getMin()) {
          context.addValidationMessage(message(ResultSeverityEnum.ERROR, "required", location + "." + name.replace("[x]", ""),
              child.getPath() + ": minimum required = " + child.getMin() + ", but only found " + found
                  + (sd.contains("/") ? " (from " + sd + ")" : "")));
        }
      }
    }

    private void check(IValidationContext<IBaseResource> context, Resource resource, Base node, String location,
        ElementDefinition ed) {
      for (ElementDefinition.ElementDefinitionConstraintComponent constraint : ed.getConstraint()) {
        if (!constraint.hasExpression()) {
          continue;
        }
        boolean ok;
        try {
          ExpressionNode expression = expressions.computeIfAbsent(constraint.getExpression(), fhirPath::parse);
          // an empty result satisfies the constraint, as in HL7's validator
          List<Base> result = fhirPath.evaluate(null, resource, resource, node, expression);
          ok = result.isEmpty() || fhirPath.convertToBoolean(result);
        } catch (Exception e) {
          context.addValidationMessage(message(ResultSeverityEnum.INFORMATION, "informational", location,
              "Constraint " + constraint.getKey() + " could not be evaluated here: " + e.getMessage()));
          continue;
        }
        if (!ok) {
          boolean error = constraint.getSeverity() == ElementDefinition.ConstraintSeverity.ERROR;
          context.addValidationMessage(message(error ? ResultSeverityEnum.ERROR : ResultSeverityEnum.WARNING,
              "invariant", location, "Constraint failed: " + constraint.getKey() + ": '" + constraint.getHuman()
                  + "' (" + constraint.getExpression() + ")"));
        }
      }
    }
  }

  private Map<String, ElementDefinition> elements(String typeOrUrl) {
    return elementsByType.computeIfAbsent(typeOrUrl, key -> {
      String url = key.contains("/") ? key : "http://hl7.org/fhir/StructureDefinition/" + key;
      StructureDefinition sd = (StructureDefinition) support.fetchStructureDefinition(url);
      Map<String, ElementDefinition> map = new HashMap<>();
      if (sd != null && sd.hasSnapshot()) {
        String type = sd.getType();
        for (ElementDefinition ed : sd.getSnapshot().getElement()) {
          // a profile's paths name its type; the walker names paths by the type too
          map.putIfAbsent(ed.getPath().replaceFirst("^" + type, key.contains("/") ? key : type), ed);
        }
      }
      return map;
    });
  }

  private static String capitalise(String s) {
    return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1);
  }

  /**
   * R4's core definitions (DefaultProfileValidationSupport, hapi-fhir-validation-resources-r4)
   * under the project's conformance resources: every *.json under the --ig directory, walked
   * recursively; a StructureDefinition without a snapshot gets one generated from its base.
   */
  static final class ConformanceSupport implements IValidationSupport {
    private final FhirContext ctx;
    private final DefaultProfileValidationSupport core;
    private final Map<String, IBaseResource> byUrl = new ConcurrentHashMap<>();

    ConformanceSupport(FhirContext ctx) {
      this.ctx = ctx;
      this.core = new DefaultProfileValidationSupport(ctx);
    }

    int load(Path dir, HapiWorkerContext worker) throws IOException {
      if (!Files.isDirectory(dir)) {
        return 0;
      }
      List<Path> files;
      try (Stream<Path> walk = Files.walk(dir)) {
        files = walk.filter(p -> p.toString().endsWith(".json")).sorted().toList();
      }
      IParser parser = ctx.newJsonParser();
      for (Path file : files) {
        IBaseResource r = parser.parseResource(Files.readString(file));
        if (r instanceof MetadataResource m && m.hasUrl()) {
          byUrl.put(m.getUrl(), r);
        } else if (r instanceof org.hl7.fhir.r4.model.NamingSystem ns) {
          // R4's NamingSystem has no url: it is known by its uniqueIds (an identifier system)
          for (org.hl7.fhir.r4.model.NamingSystem.NamingSystemUniqueIdComponent id : ns.getUniqueId()) {
            if (id.hasValue()) {
              byUrl.put(id.getValue(), r);
            }
          }
        } else {
          throw new IOException(file + ": not a conformance resource with a url");
        }
      }
      for (IBaseResource r : byUrl.values()) {
        if (r instanceof StructureDefinition sd && !sd.hasSnapshot()) {
          StructureDefinition base = (StructureDefinition) fetchStructureDefinition(sd.getBaseDefinition());
          if (base == null) {
            throw new IOException(sd.getUrl() + ": base " + sd.getBaseDefinition() + " not found");
          }
          List<ValidationMessage> messages = new ArrayList<>();
          new ProfileUtilities(worker, messages, null).generateSnapshot(base, sd, sd.getUrl(), null, sd.getName());
          for (ValidationMessage m : messages) {
            if (m.getLevel() == ValidationMessage.IssueSeverity.ERROR || m.getLevel() == ValidationMessage.IssueSeverity.FATAL) {
              throw new IOException(sd.getUrl() + ": snapshot: " + m.getMessage());
            }
          }
        }
      }
      return byUrl.size();
    }

    @Override public FhirContext getFhirContext() {
      return ctx;
    }
    @Override public IBaseResource fetchStructureDefinition(String url) {
      IBaseResource own = byUrl.get(url);
      return own != null ? own : core.fetchStructureDefinition(url);
    }
    @Override public IBaseResource fetchCodeSystem(String url) {
      IBaseResource own = byUrl.get(url);
      return own != null ? own : core.fetchCodeSystem(url);
    }
    @Override public IBaseResource fetchValueSet(String url) {
      IBaseResource own = byUrl.get(url);
      return own != null ? own : core.fetchValueSet(url);
    }
    @Override @SuppressWarnings("unchecked")
    public <T extends IBaseResource> List<T> fetchAllStructureDefinitions() {
      List<T> all = new ArrayList<>(core.<T>fetchAllStructureDefinitions());
      byUrl.values().stream().filter(r -> r instanceof StructureDefinition).forEach(r -> all.add((T) r));
      return all;
    }
    @Override
    public List<IBaseResource> fetchAllConformanceResources() {
      List<IBaseResource> all = new ArrayList<>(core.fetchAllConformanceResources());
      all.addAll(byUrl.values());
      return all;
    }
    @Override @SuppressWarnings("unchecked")
    public <T extends IBaseResource> T fetchResource(Class<T> type, String url) {
      IBaseResource own = byUrl.get(url);
      if (own != null && (type == null || type.isInstance(own))) {
        return (T) own;
      }
      return core.fetchResource(type, url);
    }
  }
}
