//! The column names of the exports people bring to a Partner Center run: an Entra admin
//! center "Download users" file (29 columns), whose names for the fields Partner Center can
//! change are accepted as aliases and whose other columns are known as "not changeable through
//! Partner Center" rather than taken for typos. Uses nothing else of the crate.

/// Entra export names (normalised) for the columns a run reads: (Entra, the tool's column).
const ALIASES: &[(&str, &str)] = &[
    ("id", "userid"),
    ("objectid", "userid"),
    ("givenname", "firstname"),
    ("surname", "lastname"),
    // Already the tool's own names once normalised; listed to say the export is read.
    ("userprincipalname", "userprincipalname"),
    ("displayname", "displayname"),
    ("usagelocation", "usagelocation"),
];

/// The columns of an Entra "Download users" export that Partner Center's user update cannot
/// set (normalised), plus a few more user properties such exports and Graph carry.
const UNCHANGEABLE: &[&str] = &[
    "mail",
    "usertype",
    "jobtitle",
    "department",
    "accountenabled",
    "streetaddress",
    "state",
    "country",
    "officelocation",
    "city",
    "postalcode",
    "telephonenumber",
    "mobilephone",
    "alternateemailaddress",
    "agegroup",
    "consentprovidedforminor",
    "legalagegroupclassification",
    "companyname",
    "creationtype",
    "directorysynced",
    "invitationstate",
    "identityissuer",
    "createddatetime",
    // Other user properties people export from Graph or PowerShell.
    "businessphones",
    "employeeid",
    "employeetype",
    "faxnumber",
    "preferredlanguage",
    "proxyaddresses",
    "othermails",
    "mailnickname",
    "onpremisessamaccountname",
    "onpremisesimmutableid",
    "lastsignindatetime",
    "manager",
];

/// The tool's column an export's header name means.
pub fn alias(normalized: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(entra, _)| *entra == normalized)
        .map(|(_, column)| *column)
}

/// Whether the header name is a user property Partner Center cannot change.
pub fn unchangeable(normalized: &str) -> bool {
    UNCHANGEABLE.contains(&normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entra_export_s_29_columns_are_all_known() {
        let export = "id,userPrincipalName,displayName,surname,mail,givenName,userType,jobTitle,department,accountEnabled,usageLocation,streetAddress,state,country,officeLocation,city,postalCode,telephoneNumber,mobilePhone,alternateEmailAddress,ageGroup,consentProvidedForMinor,legalAgeGroupClassification,companyName,creationType,directorySynced,invitationState,identityIssuer,createdDateTime";
        let names: Vec<String> = export.split(',').map(|n| n.to_lowercase()).collect();
        assert_eq!(names.len(), 29);
        for n in &names {
            assert!(
                alias(n).is_some() != unchangeable(n),
                "{n} is either read or known as unchangeable"
            );
        }
        assert_eq!(alias("givenname"), Some("firstname"));
        assert!(!unchangeable("usagelocaton"));
    }
}
