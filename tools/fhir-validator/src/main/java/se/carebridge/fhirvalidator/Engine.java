package se.carebridge.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.context.support.ValidationSupportContext;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.OperationOutcome;
import org.hl7.fhir.r4.model.StringType;
import org.hl7.fhir.r4.model.StructureDefinition;

/**
 * HAPI FHIR's instance validator (FhirInstanceValidator, which wraps HL7's
 * org.hl7.fhir.validation InstanceValidator), entirely offline. What it checks: structure
 * and datatypes straight from the JSON (unknown elements, wrong JSON types, bad primitive
 * formats), cardinality, every invariant, fixed and pattern values, slicing, terminology
 * bindings, reference targets and references inside a Bundle, and every profile a resource
 * declares in meta.profile (the Bundle's and each entry's).
 *
 * <p>The definitions it validates with, in the order asked:
 *
 * <ol>
 *   <li>the project's conformance resources: every *.json under --ig (StructureDefinition,
 *       CodeSystem, ValueSet, NamingSystem, ...; a profile given only as a differential gets its
 *       snapshot generated here, at start-up, and a failure to generate one stops the tool);
 *   <li>R4's core definitions (DefaultProfileValidationSupport: hapi-fhir-validation-resources-r4);
 *   <li>Common Languages judged as R4 binds it, preferred with All Languages as its maximum
 *       (PreferredLanguages: a BCP-47 language it does not list is a warning, not HAPI's error);
 *   <li>the code systems HAPI knows without a server (CommonCodeSystemsTerminologyService:
 *       UCUM, BCP-47 languages, MIME types, ISO 3166 and 4217, US states);
 *   <li>in-memory terminology: a code is checked against any ValueSet and CodeSystem loaded
 *       above, and a ValueSet is expanded from them;
 *   <li>snapshot generation for any differential still asked for;
 *   <li>last, UnknownCodeSystemWarningValidationSupport: a code from a system that is neither
 *       loaded nor built in (SNOMED CT, ATC, NPL, ISO 9999, LOINC, kommunkod, ...) is a WARNING
 *       ("CodeSystem is unknown and can't be validated"), not an error. There is no terminology
 *       server here, so such a code cannot be checked; its system URI, the ValueSet it is bound
 *       to when that ValueSet names codes itself, and everything around it still are.
 * </ol>
 *
 * <p>Extensions: only those with a loaded definition are allowed (setAnyExtensionsAllowed(false)),
 * so an unknown extension URL is an error. Nothing opens a network connection (see Main.noNetwork).
 */
final class Engine {
  final FhirContext ctx = FhirContext.forR4Cached();
  private final FhirValidator validator;
  private final ValidationSupportChain chain;
  final int conformanceResources;

  Engine(Path igDir) throws IOException {
    PrePopulatedValidationSupport own = new PrePopulatedValidationSupport(ctx);
    List<IBaseResource> loaded = igDir == null ? List.of() : load(igDir);
    for (IBaseResource r : loaded) {
      own.addResource(r);
    }
    conformanceResources = loaded.size();
    SnapshotGeneratingValidationSupport snapshots = new SnapshotGeneratingValidationSupport(ctx);
    UnknownCodeSystemWarningValidationSupport unknownSystems = new UnknownCodeSystemWarningValidationSupport(ctx);
    unknownSystems.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);
    CommonCodeSystemsTerminologyService common = new CommonCodeSystemsTerminologyService(ctx);
    chain = new ValidationSupportChain(
        own,
        new DefaultProfileValidationSupport(ctx),
        new PreferredLanguages(ctx, common),
        common,
        new InMemoryTerminologyServerValidationSupport(ctx),
        snapshots,
        unknownSystems);
    generateSnapshots(own, snapshots, loaded);

    FhirInstanceValidator instanceValidator = new FhirInstanceValidator(chain);
    instanceValidator.setAnyExtensionsAllowed(false);
    instanceValidator.setErrorForUnknownProfiles(true);
    validator = ctx.newValidator();
    validator.setValidateAgainstStandardSchema(false);
    validator.setValidateAgainstStandardSchematron(false);
    validator.registerValidatorModule(instanceValidator);
  }

  private List<IBaseResource> load(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException(dir + ": not a directory");
    }
    List<Path> files;
    try (Stream<Path> walk = Files.walk(dir)) {
      files = walk.filter(p -> p.toString().endsWith(".json")).sorted().toList();
    }
    IParser parser = ctx.newJsonParser();
    List<IBaseResource> out = new ArrayList<>();
    for (Path file : files) {
      out.add(parser.parseResource(Files.readString(file)));
    }
    return out;
  }

  /** Each differential-only profile, with its snapshot, replaces itself before any validation. */
  private void generateSnapshots(PrePopulatedValidationSupport own, SnapshotGeneratingValidationSupport snapshots,
      List<IBaseResource> loaded) throws IOException {
    ValidationSupportContext context = new ValidationSupportContext(chain);
    // a profile based on another project profile needs that one's snapshot first: a few passes
    List<StructureDefinition> pending = new ArrayList<>();
    for (IBaseResource r : loaded) {
      if (r instanceof StructureDefinition sd && !sd.hasSnapshot()) {
        pending.add(sd);
      }
    }
    for (int pass = 0; pass < 5 && !pending.isEmpty(); pass++) {
      List<StructureDefinition> next = new ArrayList<>();
      for (StructureDefinition sd : pending) {
        IBaseResource withSnapshot = snapshots.generateSnapshot(context, sd, sd.getUrl(), null, sd.getName());
        if (withSnapshot instanceof StructureDefinition done && done.hasSnapshot()) {
          own.addStructureDefinition(done);
        } else {
          next.add(sd);
        }
      }
      pending = next;
    }
    if (!pending.isEmpty()) {
      throw new IOException("no snapshot for " + pending.stream().map(StructureDefinition::getUrl).toList());
    }
    chain.invalidateCaches();
  }

  /** Validates one FHIR JSON document, against what it declares and optionally a profile too. */
  OperationOutcome validate(String json, String profile) {
    ValidationOptions options = new ValidationOptions();
    if (profile != null && !profile.isBlank()) {
      if (chain.fetchStructureDefinition(profile) == null) {
        OperationOutcome oo = new OperationOutcome();
        oo.addIssue()
            .setSeverity(OperationOutcome.IssueSeverity.ERROR)
            .setCode(OperationOutcome.IssueType.NOTFOUND)
            .setDiagnostics("Profile " + profile + " is not among the conformance resources loaded (--ig)");
        return oo;
      }
      options.addProfile(profile);
    }
    List<SingleValidationMessage> messages = validator.validateWithResult(json, options).getMessages();
    messages.forEach(Engine::demoteCorePackageLookup);
    return outcome(messages);
  }

  /**
   * Validating an extension's StructureDefinition, the validator regenerates its snapshot to
   * compare and fails to look up the id of R4's own core package (which HAPI's
   * DefaultProfileValidationSupport loads without one): "Unable to resolve package id
   * hl7.fhir.r4.core#null". That is the validator's set-up, not the differential: the same
   * differential got its snapshot at start-up (generateSnapshots, which stops the tool when it
   * cannot), and every golden is validated against it. So that one message is a warning.
   */
  private static void demoteCorePackageLookup(SingleValidationMessage m) {
    if ("ERROR_GENERATING_SNAPSHOT".equals(m.getMessageId()) && m.getMessage() != null
        && m.getMessage().contains("Unable to resolve package id hl7.fhir.r4.core#null")) {
      m.setSeverity(ResultSeverityEnum.WARNING);
      m.setMessage(m.getMessage() + " [a warning here: the core package has no id in HAPI's"
          + " DefaultProfileValidationSupport; the snapshot itself was generated at start-up]");
    }
  }

  /**
   * One issue per message: the FHIRPath of the element in expression, the line and column of
   * the JSON sent in location, HL7's message id (stable across wording changes) in details.
   */
  private static OperationOutcome outcome(List<SingleValidationMessage> messages) {
    OperationOutcome oo = new OperationOutcome();
    for (SingleValidationMessage m : messages) {
      OperationOutcome.OperationOutcomeIssueComponent issue = oo.addIssue();
      issue.setSeverity(severity(m.getSeverity()));
      issue.setCode(m.getSeverity() == ResultSeverityEnum.INFORMATION
          ? OperationOutcome.IssueType.INFORMATIONAL : OperationOutcome.IssueType.PROCESSING);
      issue.setDiagnostics(m.getMessage());
      if (m.getLocationString() != null) {
        issue.addExpression(m.getLocationString());
      }
      if (m.getLocationLine() != null) {
        issue.addLocation("Line[" + m.getLocationLine() + "] Col[" + m.getLocationCol() + "]");
      }
      if (m.getMessageId() != null) {
        issue.getDetails().addCoding().setSystem(MESSAGE_IDS).setCode(m.getMessageId());
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

  /** The code system of HL7's validator message ids (org.hl7.fhir.utilities.i18n.I18nConstants). */
  static final String MESSAGE_IDS = "http://hl7.org/fhir/java-core-messageId";

  private static OperationOutcome.IssueSeverity severity(ResultSeverityEnum s) {
    return switch (s) {
      case FATAL -> OperationOutcome.IssueSeverity.FATAL;
      case ERROR -> OperationOutcome.IssueSeverity.ERROR;
      case WARNING -> OperationOutcome.IssueSeverity.WARNING;
      case INFORMATION -> OperationOutcome.IssueSeverity.INFORMATION;
    };
  }

  static String messageId(OperationOutcome.OperationOutcomeIssueComponent issue) {
    return issue.getDetails().getCoding().stream()
        .filter(c -> MESSAGE_IDS.equals(c.getSystem())).map(c -> c.getCode()).findFirst().orElse(null);
  }

  static String first(List<StringType> values) {
    return values.stream().map(StringType::getValue).findFirst().orElse(null);
  }
}
