package se.carebridge.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.ConceptValidationOptions;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.context.support.ValidationSupportContext;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.instance.model.api.IBaseResource;

/**
 * R4 binds every human language (Patient.communication.language, RelatedPerson's,
 * Attachment.language, ...) to Common Languages with strength <em>preferred</em>, limited to
 * All Languages (any BCP-47 tag) by the elementdefinition-maxValueSet extension. So Tigrinya
 * ("ti"), Somali ("so"), Persian ("fa") and Northern Sami ("se", a national minority language
 * in Sweden) are valid there although Common Languages does not list them.
 *
 * <p>HAPI's CommonCodeSystemsTerminologyService answers a code outside Common Languages with
 * an ERROR whatever the binding's strength (hapi-fhir issue 7959), so HAPI 8.6.5 alone rejects
 * a correct message for a patient who needs a Tigrinya interpreter. This module sits before it
 * in the chain and answers for Common Languages only:
 *
 * <ul>
 *   <li>a code Common Languages lists: HAPI's own answer, valid;
 *   <li>a code it does not list but that is a BCP-47 language tag (HAPI's own check against All
 *       Languages): a WARNING that names the preferred value set, as the binding's strength
 *       calls for;
 *   <li>anything else (not a language tag, or another code system): HAPI's own ERROR.
 * </ul>
 */
final class PreferredLanguages implements IValidationSupport {
  private final FhirContext ctx;
  private final CommonCodeSystemsTerminologyService common;

  PreferredLanguages(FhirContext ctx, CommonCodeSystemsTerminologyService common) {
    this.ctx = ctx;
    this.common = common;
  }

  @Override
  public FhirContext getFhirContext() {
    return ctx;
  }

  @Override
  public String getName() {
    return "carebridge preferred-languages binding";
  }

  @Override
  public boolean isValueSetSupported(ValidationSupportContext context, String valueSetUrl) {
    return isCommonLanguages(valueSetUrl);
  }

  @Override
  public CodeValidationResult validateCodeInValueSet(ValidationSupportContext context,
      ConceptValidationOptions options, String system, String code, String display, IBaseResource valueSet) {
    String url = urlOf(valueSet);
    return isCommonLanguages(url) ? validateCode(context, options, system, code, display, url) : null;
  }

  @Override
  public CodeValidationResult validateCode(ValidationSupportContext context, ConceptValidationOptions options,
      String system, String code, String display, String valueSetUrl) {
    if (!isCommonLanguages(valueSetUrl)) {
      return null;
    }
    CodeValidationResult listed = common.validateCode(context, options, system, code, display, valueSetUrl);
    if (listed == null || listed.isOk()) {
      return listed;
    }
    CodeValidationResult anyLanguage = common.validateCode(context, options, system, code, display,
        CommonCodeSystemsTerminologyService.ALL_LANGUAGES_VALUESET_URL);
    if (anyLanguage == null || !anyLanguage.isOk()) {
      return listed;
    }
    return new CodeValidationResult()
        .setSeverity(IssueSeverity.WARNING)
        .setMessage("The BCP-47 language \"" + code + "\" is not in the preferred value set "
            + CommonCodeSystemsTerminologyService.LANGUAGES_VALUESET_URL
            + " (Common Languages); it is in its maximum value set, All Languages");
  }

  private static boolean isCommonLanguages(String valueSetUrl) {
    if (valueSetUrl == null) {
      return false;
    }
    int bar = valueSetUrl.indexOf('|');
    String bare = bar < 0 ? valueSetUrl : valueSetUrl.substring(0, bar);
    return CommonCodeSystemsTerminologyService.LANGUAGES_VALUESET_URL.equals(bare);
  }

  private static String urlOf(IBaseResource valueSet) {
    if (valueSet instanceof org.hl7.fhir.r4.model.ValueSet vs) {
      return vs.getUrl();
    }
    if (valueSet instanceof org.hl7.fhir.r5.model.ValueSet vs) {
      return vs.getUrl();
    }
    return null;
  }
}
