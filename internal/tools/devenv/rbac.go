package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ManagerNamespace and ManagerServiceAccount are where the operator runs with
// Options.ManagerRBAC, as in the cluster manifests.
const (
	ManagerNamespace      = "metal-operator-system"
	ManagerServiceAccount = "metal-operator-controller-manager"
)

// managerIdentity installs the manager's roles of config/rbac (manager-role and
// leader-election-role), binds them to the manager's service account, and returns a config
// that acts as that account: the operator then holds exactly the published permissions.
func managerIdentity(ctx context.Context, c client.Client, cfg *rest.Config, root string) (*rest.Config, error) {
	read := func(file string, into any) error {
		raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", file))
		if err != nil {
			return err
		}
		return yaml.Unmarshal(raw, into)
	}
	cluster, local, err := managerRoles(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, fmt.Errorf("reading the manager role: %w", err)
	}
	election := &rbacv1.Role{}
	if err := read("leader_election_role.yaml", election); err != nil {
		return nil, fmt.Errorf("reading the leader election role: %w", err)
	}
	election.Namespace = ManagerNamespace
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: ManagerServiceAccount, Namespace: ManagerNamespace}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ManagerNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ManagerNamespace, Name: ManagerServiceAccount}},
		cluster, election,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: cluster.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cluster.Name},
			Subjects:   []rbacv1.Subject{subject},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ManagerNamespace, Name: election.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: election.Name},
			Subjects:   []rbacv1.Subject{subject},
		},
		local,
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ManagerNamespace, Name: local.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: local.Name},
			Subjects:   []rbacv1.Subject{subject},
		},
	} {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	as := rest.CopyConfig(cfg)
	as.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ManagerNamespace + ":" + ManagerServiceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ManagerNamespace, "system:authenticated"},
	}
	return as, nil
}

// managerRoles reads manager-role's two halves from the generated role.yaml: the ClusterRole,
// and the Role of the rules that hold in the manager's namespace only (placed there).
func managerRoles(path string) (*rbacv1.ClusterRole, *rbacv1.Role, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cluster, local := &rbacv1.ClusterRole{}, &rbacv1.Role{}
	for _, doc := range strings.Split(string(raw), "\n---") {
		var head metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, nil, err
		}
		switch head.Kind {
		case "ClusterRole":
			err = yaml.Unmarshal([]byte(doc), cluster)
		case "Role":
			err = yaml.Unmarshal([]byte(doc), local)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if len(cluster.Rules) == 0 || len(local.Rules) == 0 {
		return nil, nil, fmt.Errorf("%s: want a ClusterRole and a Role with rules", path)
	}
	local.Namespace = ManagerNamespace
	return cluster, local, nil
}
